// Hand-made resources and a one-call run of the pack's policies for the policy tests.
import type { PolicySettings, Violation } from "../../tools/policy-engine";
import { resolvePackConfig, runPolicies } from "../../tools/policy-engine";

export interface Res {
  type: string;
  name: string;
  urn: string;
  inputs: Record<string, unknown>;
  props: Record<string, unknown>;
  propertyDependencies?: Record<string, string[]>;
}

/** A resource whose inputs and outputs are the same bag (what the policies read here). */
export function res(type: string, name: string, props: Record<string, unknown>): Res {
  return {
    type,
    name,
    urn: `urn:pulumi:test::iot-pipeline::${type}::${name}`,
    inputs: props,
    props,
  };
}

/** Runs every policy on the resources in a stack; returns "level policy: message" lines. */
export async function violations(
  resources: Res[],
  stack = "prod",
  packConfig: unknown = {},
): Promise<Violation[]> {
  const settings: Map<string, PolicySettings> = resolvePackConfig(packConfig);
  return runPolicies(resources, { stack, settings });
}

export function lines(vs: readonly Violation[]): string[] {
  return vs.map((v) => `${v.level} ${v.policy}: ${v.message}`);
}

export const CTX = { partition: "aws", region: "us-east-1", accountId: "123456789012" };
export const ARN = "arn:aws:iot:us-east-1:123456789012";

// Lookups over a mocked program run, with failure messages that say what was expected.
import { strict as assert } from "node:assert";
import type { ProgramRun, RegisteredResource } from "../../tools/mock-program";

export function ofType(run: ProgramRun, type: string): RegisteredResource[] {
  return run.resources.filter((r) => r.type === type);
}

/** The one resource of a type (optionally matching a predicate); fails when there are 0 or 2+. */
export function one(
  run: ProgramRun,
  type: string,
  where: (r: RegisteredResource) => boolean = () => true,
): RegisteredResource {
  const found = ofType(run, type).filter(where);
  assert.equal(
    found.length,
    1,
    `expected one ${type}, found ${found.length}: ${found.map((r) => r.name).join(", ")}`,
  );
  return found[0];
}

export function byUrn(run: ProgramRun, urn: string): RegisteredResource {
  const r = run.resources.find((x) => x.urn === urn);
  assert.ok(r, `no resource has URN ${urn}`);
  return r;
}

/** A JSON document prop (IAM or IoT policy), parsed. */
export function json(value: unknown): Record<string, unknown> {
  assert.equal(typeof value, "string", `expected a JSON document, got ${typeof value}`);
  return JSON.parse(value as string) as Record<string, unknown>;
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Principal?: { Service?: string | string[] };
  Condition?: unknown;
}

export function statements(doc: Record<string, unknown>): Statement[] {
  const s = doc.Statement as Statement | Statement[];
  return Array.isArray(s) ? s : [s];
}

export function list(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** The service principals a role's trust policy names. */
export function trustedServices(role: RegisteredResource): string[] {
  return statements(json(role.props.assumeRolePolicy)).flatMap((s) => list(s.Principal?.Service));
}

/** The role policies attached to a role (inline RolePolicy resources naming its id). */
export function rolePolicies(run: ProgramRun, role: RegisteredResource): Statement[] {
  return ofType(run, "aws:iam/rolePolicy:RolePolicy")
    .filter((p) => p.props.role === role.props.name)
    .flatMap((p) => statements(json(p.props.policy)));
}

/** One grant flattened: sorted actions and resources of every statement of a role. */
export function grants(run: ProgramRun, role: RegisteredResource) {
  const st = rolePolicies(run, role);
  return {
    actions: st.flatMap((s) => list(s.Action)).sort(),
    resources: [...new Set(st.flatMap((s) => list(s.Resource)))].sort(),
  };
}

// The Pulumi engine's side of `pulumi up`, minus AWS: a gRPC ResourceMonitor and Engine on
// 127.0.0.1 that a program started by the SDK's own entry point (@pulumi/pulumi/cmd/run, as the
// Node language host starts it) registers its resources with. Registrations are answered by the
// same mocks as tools/mock-program.ts, so only AWS is stood in for; the program, its loader and
// the wire protocol are the real ones.
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { EngineService } from "@pulumi/pulumi/proto/engine_grpc_pb";
import {
  GetRootResourceResponse,
  type LogRequest,
  RequirePulumiVersionResponse,
  type SetRootResourceRequest,
  SetRootResourceResponse,
} from "@pulumi/pulumi/proto/engine_pb";
import { ResourceMonitorService } from "@pulumi/pulumi/proto/resource_grpc_pb";
import {
  RegisterPackageResponse,
  type RegisterResourceRequest,
  RegisterResourceResponse,
  type ResourceInvokeRequest,
  ResourceInvokeResponse,
  type SupportsFeatureRequest,
  SupportsFeatureResponse,
} from "@pulumi/pulumi/proto/resource_pb";
import { deserializeProperties, serializeProperties } from "@pulumi/pulumi/runtime/rpc";
import { mockCall, mockResource } from "../../tools/mock-program";

/** One resource the program registered, as the engine saw it. */
export interface EngineResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly parent: string;
  readonly custom: boolean;
  readonly inputs: Record<string, unknown>;
}

export interface FakeEngine {
  /** `127.0.0.1:PORT`, for `--monitor` and `--engine`. */
  readonly address: string;
  readonly resources: EngineResource[];
  /** What the program logged through the engine (errors included), one entry per message. */
  readonly logs: string[];
  /** The stack's outputs, once the program registered them on its root resource. */
  stackOutputs(): Record<string, unknown> | undefined;
  close(): Promise<void>;
}

type Handler<Req, Res> = (
  call: grpc.ServerUnaryCall<Req, Res>,
  callback: grpc.sendUnaryData<Res>,
) => void;

/** A unary handler whose async body's rejection becomes the gRPC error. */
function unary<Req, Res>(body: (req: Req) => Promise<Res> | Res): Handler<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => body(call.request))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(err as grpc.ServiceError, null),
      );
  };
}

/** Starts the fake engine for a program of `project`/`stack` in `region`. */
export async function startFakeEngine(
  project: string,
  stack: string,
  region: string,
): Promise<FakeEngine> {
  const resources: EngineResource[] = [];
  const logs: string[] = [];
  let rootUrn = "";
  let outputs: Record<string, unknown> | undefined;
  const urnOf = (parent: string, type: string, name: string) => {
    const qualified = parent === "" ? type : `${parent.split("::")[2]}$${type}`;
    return `urn:pulumi:${stack}::${project}::${qualified}::${name}`;
  };

  const server = new grpc.Server();
  server.addService(ResourceMonitorService, {
    supportsFeature: unary((req: SupportsFeatureRequest) => {
      // As tools/mock-program's setMocks: plain values rather than output values in the inputs.
      const res = new SupportsFeatureResponse();
      res.setHassupport(req.getId() !== "outputValues");
      return res;
    }),
    registerResource: unary(async (req: RegisterResourceRequest) => {
      const inputs = deserializeProperties(req.getObject() ?? new Struct()) as Record<
        string,
        unknown
      >;
      const urn = urnOf(req.getParent(), req.getType(), req.getName());
      const result = req.getCustom()
        ? await mockResource(req.getType(), req.getName(), inputs, region)
        : { id: "", state: {} };
      resources.push({
        type: req.getType(),
        name: req.getName(),
        urn,
        parent: req.getParent(),
        custom: req.getCustom(),
        inputs,
      });
      const res = new RegisterResourceResponse();
      res.setUrn(urn);
      res.setId(result.id);
      res.setObject(
        Struct.fromJavaScript(
          (await serializeProperties("", { ...inputs, ...result.state })) as Record<string, never>,
        ),
      );
      return res;
    }),
    registerResourceOutputs: unary(async (req: { getUrn(): string; getOutputs(): Struct }) => {
      if (req.getUrn() === rootUrn) {
        outputs = deserializeProperties(req.getOutputs()) as Record<string, unknown>;
      }
      return new Empty();
    }),
    invoke: unary(async (req: ResourceInvokeRequest) => {
      const args = deserializeProperties(req.getArgs() ?? new Struct()) as Record<string, unknown>;
      const res = new ResourceInvokeResponse();
      res.setReturn(
        Struct.fromJavaScript(
          (await serializeProperties("", mockCall(req.getTok(), args, region))) as Record<
            string,
            never
          >,
        ),
      );
      return res;
    }),
    registerPackage: unary(() => {
      const res = new RegisterPackageResponse();
      res.setRef("fake-engine-package");
      return res;
    }),
    signalAndWaitForShutdown: unary(() => new Empty()),
  });
  server.addService(EngineService, {
    log: unary((req: LogRequest) => {
      logs.push(req.getMessage());
      return new Empty();
    }),
    setRootResource: unary((req: SetRootResourceRequest) => {
      rootUrn = req.getUrn();
      return new SetRootResourceResponse();
    }),
    getRootResource: unary(() => {
      const res = new GetRootResourceResponse();
      res.setUrn(rootUrn);
      return res;
    }),
    requirePulumiVersion: unary(() => new RequirePulumiVersionResponse()),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    resources,
    logs,
    stackOutputs: () => outputs,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      }),
  };
}

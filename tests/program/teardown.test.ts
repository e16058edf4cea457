// Tearing a stack down without a race: Pulumi deletes a resource only after everything that
// depends on it, so every writer of the bucket (both Firehose streams, the Flink application and
// its code) must depend on the bucket; then `forceDestroy` can empty it last, when nothing can
// refill it. Dev sets forceDestroy (the tutorial tears down with `pulumi destroy` alone), prod keeps
// its data unless asked.
import { strict as assert } from "node:assert";
import { runProgram, type ProgramRun } from "../../tools/mock-program";
import { one, ofType } from "./helpers";

const BUCKET = "aws:s3/bucket:Bucket";
/** The pipeline's bucket (prod also has an access log bucket). */
const dataBucket = (run: ProgramRun) =>
  one(run, BUCKET, (b) => b.name.endsWith("-delivery-bucket"));

/** Whether `urn` depends on `on`, directly or through the resources it depends on. */
function dependsOn(run: ProgramRun, urn: string, on: string, seen = new Set<string>()): boolean {
  if (seen.has(urn)) return false;
  seen.add(urn);
  const r = run.resources.find((x) => x.urn === urn);
  return (r?.options.dependencies ?? []).some((d) => d === on || dependsOn(run, d, on, seen));
}

for (const [stack, forceDestroy] of [
  ["dev", true],
  ["prod", false],
] as const) {
  describe(`teardown of the ${stack} stack`, () => {
    let run: ProgramRun;
    before(async () => {
      run = await runProgram(stack);
    });

    it(`sets the bucket's forceDestroy to ${forceDestroy}`, () => {
      for (const b of ofType(run, BUCKET))
        assert.equal(b.inputs.forceDestroy, forceDestroy, b.name);
    });

    it("makes every writer of the bucket depend on it, so destroy removes them first", () => {
      const bucket = dataBucket(run);
      const writers = [
        ...ofType(run, "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"),
        ...ofType(run, "aws:kinesisanalyticsv2/application:Application"),
        ...ofType(run, "aws:s3/bucketObjectv2:BucketObjectv2"),
      ];
      assert.equal(writers.length, 4, "two Firehose streams, the Flink application, its code");
      for (const w of writers) {
        assert.ok(dependsOn(run, w.urn, bucket.urn), `${w.name} depends on the bucket`);
      }
    });
  });
}

// The queryable lake in the cloud: a Glue database and table over the delivered telemetry (the
// columns and key layout of core/lake.ts, partitions found by Athena's partition projection), an
// Athena workgroup whose results go to the pipeline's bucket under a prefix of their own, and the
// saved queries. The table is also the schema Firehose converts records to Parquet with.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  ATHENA_RESULTS_PREFIX,
  LAKE_TABLE,
  projectionParameters,
  SERDE,
  type LakeColumn,
  type LakeLayout,
  type SavedQuery,
} from "../../core/lake";

export interface LakeArgs {
  /** The Glue database's name (core/lake.ts lakeDatabaseName). */
  readonly databaseName: string;
  /** The Athena workgroup's name. */
  readonly workgroupName: string;
  /** The pipeline's bucket. */
  readonly bucketName: pulumi.Input<string>;
  readonly layout: LakeLayout;
  readonly columns: readonly LakeColumn[];
  /** The fleet's thing names: the `device` partition's values when the stream partitions by thing. */
  readonly things: readonly string[];
  readonly savedQueries: readonly SavedQuery[];
  /** Encrypt Athena's results with this key; SSE-S3 when undefined. */
  readonly kmsKeyArn?: pulumi.Input<string>;
  /**
   * The most data one query may scan, in bytes (Athena's per-query control; 10 MB minimum).
   * @default 10 GiB
   */
  readonly bytesScannedCutoffPerQuery?: number;
  /** `pulumi destroy` deletes the workgroup with its query history. @default false */
  readonly forceDestroy?: boolean;
}

export class Lake extends pulumi.ComponentResource {
  readonly database: aws.glue.CatalogDatabase;
  readonly table: aws.glue.CatalogTable;
  readonly workgroup: aws.athena.Workgroup;
  readonly queries: Readonly<Record<string, aws.athena.NamedQuery>>;
  /** The ARNs a role reading the table's schema needs (Glue authorizes table reads on all three). */
  readonly glueArns: pulumi.Output<{ catalog: string; database: string; table: string }>;

  constructor(name: string, args: LakeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:lake:Lake", name, {}, opts);
    const parent = { parent: this };
    const layout = args.layout;
    const serde = SERDE[layout.format];

    this.database = new aws.glue.CatalogDatabase(
      `${name}-database`,
      { name: args.databaseName, description: "The IoT pipeline's delivered telemetry" },
      parent,
    );
    this.table = new aws.glue.CatalogTable(
      `${name}-table`,
      {
        name: LAKE_TABLE,
        databaseName: this.database.name,
        tableType: "EXTERNAL_TABLE",
        parameters: pulumi.output(args.bucketName).apply((bucket) => ({
          EXTERNAL: "TRUE",
          classification: layout.format,
          ...projectionParameters(layout, bucket, args.things),
        })),
        partitionKeys: layout.partitions.map((p) => ({ name: p, type: "string" })),
        storageDescriptor: {
          location: pulumi.interpolate`s3://${args.bucketName}/${layout.location}`,
          inputFormat: serde.inputFormat,
          outputFormat: serde.outputFormat,
          serDeInfo: {
            serializationLibrary: serde.serializationLibrary,
            parameters: { ...serde.parameters },
          },
          columns: args.columns.map((c) => ({ name: c.name, type: c.type })),
        },
      },
      parent,
    );

    this.workgroup = new aws.athena.Workgroup(
      `${name}-workgroup`,
      {
        name: args.workgroupName,
        forceDestroy: args.forceDestroy ?? false,
        configuration: {
          // Every query of the workgroup uses its results location and encryption.
          enforceWorkgroupConfiguration: true,
          publishCloudwatchMetricsEnabled: true,
          bytesScannedCutoffPerQuery: args.bytesScannedCutoffPerQuery ?? 10 * 1024 ** 3,
          resultConfiguration: {
            outputLocation: pulumi.interpolate`s3://${args.bucketName}/${ATHENA_RESULTS_PREFIX}`,
            encryptionConfiguration:
              args.kmsKeyArn === undefined
                ? { encryptionOption: "SSE_S3" }
                : { encryptionOption: "SSE_KMS", kmsKeyArn: args.kmsKeyArn },
          },
        },
      },
      parent,
    );

    const queries: Record<string, aws.athena.NamedQuery> = {};
    for (const q of args.savedQueries) {
      queries[q.name] = new aws.athena.NamedQuery(
        `${name}-query-${q.name}`,
        {
          name: q.name,
          description: q.description,
          database: this.database.name,
          workgroup: this.workgroup.name,
          query: q.sql,
        },
        parent,
      );
    }
    this.queries = queries;

    const region = aws.getRegionOutput({}, parent).region;
    const accountId = aws.getCallerIdentityOutput({}, parent).accountId;
    const partition = aws.getPartitionOutput({}, parent).partition;
    this.glueArns = pulumi
      .all([partition, region, accountId, this.database.arn, this.table.arn])
      .apply(([p, r, a, database, table]) => ({
        catalog: `arn:${p}:glue:${r}:${a}:catalog`,
        database,
        table,
      }));

    this.registerOutputs({
      database: this.database.name,
      table: this.table.name,
      workgroup: this.workgroup.name,
    });
  }
}

CREATE TABLE telemetry (
  `timestamp` BIGINT,
  `max_temperature` DOUBLE,
  `min_temperature` DOUBLE,
  `ts` AS TO_TIMESTAMP_LTZ(`timestamp`, 3),
  WATERMARK FOR `ts` AS `ts` - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kinesis',
  'stream.arn' = 'arn:aws:kinesis:us-east-1:123456789012:stream/telemetry-stream',
  'aws.region' = 'us-east-1',
  'source.init.position' = 'LATEST',
  'format' = 'json',
  'json.ignore-parse-errors' = 'true'
);

CREATE TABLE telemetry_windows (
  `window_start` TIMESTAMP_LTZ(3),
  `window_end` TIMESTAMP_LTZ(3),
  `max_temp` DOUBLE,
  `min_temp` DOUBLE,
  `records` BIGINT
) WITH (
  'connector' = 'kinesis',
  'stream.arn' = 'arn:aws:kinesis:us-east-1:123456789012:stream/telemetry-windows',
  'aws.region' = 'us-east-1',
  'format' = 'json',
  'json.timestamp-format.standard' = 'ISO-8601'
);

INSERT INTO telemetry_windows
SELECT
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS `window_start`,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS `window_end`,
  MAX(`max_temperature`) AS `max_temp`,
  MIN(`min_temperature`) AS `min_temp`,
  COUNT(*) AS `records`
FROM TABLE(TUMBLE(TABLE telemetry, DESCRIPTOR(`ts`), INTERVAL '10' SECONDS))
GROUP BY window_start, window_end;

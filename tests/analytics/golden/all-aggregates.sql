CREATE TABLE telemetry (
  `thing` STRING,
  `timestamp` BIGINT,
  `temperature` DOUBLE,
  `humidity` DOUBLE,
  `precipitation` DOUBLE,
  `weather` STRING,
  `ts` AS PROCTIME()
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
  `thing` STRING,
  `weather` STRING,
  `avg_temp` DOUBLE,
  `rain_mm` DOUBLE,
  `humidity_readings` BIGINT,
  `last_reading` BIGINT,
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
  `thing`,
  `weather`,
  AVG(CAST(`temperature` AS DOUBLE)) AS `avg_temp`,
  SUM(`precipitation`) AS `rain_mm`,
  COUNT(`humidity`) AS `humidity_readings`,
  MAX(`timestamp`) AS `last_reading`,
  COUNT(*) AS `records`
FROM TABLE(TUMBLE(TABLE telemetry, DESCRIPTOR(`ts`), INTERVAL '60' SECONDS))
GROUP BY window_start, window_end, `thing`, `weather`;

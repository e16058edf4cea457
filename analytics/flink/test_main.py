"""Tests of main.py against a stand-in for the pyflink table environment (pyflink is not installed
here; Managed Flink provides it). Run: python3 -m unittest discover -s analytics/flink -p 'test_*.py'"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import main

HERE = os.path.dirname(os.path.abspath(__file__))


class StandInResult:
    """What execute_sql returns: records whether the caller waited on it."""

    def __init__(self, statement):
        self.statement = statement
        self.waited = False

    def wait(self):
        self.waited = True


class StandInConfig:
    def __init__(self):
        self.values = {}

    def set(self, key, value):
        self.values[key] = value
        return self


class StandInTableEnvironment:
    """Records each execute_sql call in order, like a TableEnvironment that never fails."""

    def __init__(self):
        self.executed = []
        self.results = []
        self.config = StandInConfig()

    def get_config(self):
        return self.config

    def execute_sql(self, statement):
        self.executed.append(statement)
        result = StandInResult(statement)
        self.results.append(result)
        return result


RUN_OPTIONS = {
    "PropertyGroupId": "kinesis.analytics.flink.run.options",
    "PropertyMap": {"python": "main.py", "jarfile": "lib/flink-sql-connector-kinesis-5.0.0-1.20.jar"},
}


def sql_group(**statements):
    return {"PropertyGroupId": "sql.statements", "PropertyMap": statements}


class PropertiesFile:
    """A real application_properties.json in a temporary folder."""

    def __init__(self, content):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "application_properties.json")
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))

    def environ(self, **extra):
        return {"APPLICATION_PROPERTIES_FILE": self.path, **extra}

    def close(self):
        self.dir.cleanup()


class MainTest(unittest.TestCase):
    def run_main(self, content, **environ):
        props = PropertiesFile(content)
        self.addCleanup(props.close)
        env = StandInTableEnvironment()
        result = main.main(environ=props.environ(**environ), table_env_factory=lambda: env)
        return env, result

    def assertConfigurationError(self, content, pattern):
        env = StandInTableEnvironment()
        props = PropertiesFile(content)
        self.addCleanup(props.close)
        with self.assertRaisesRegex(main.ConfigurationError, pattern) as caught:
            main.main(environ=props.environ(), table_env_factory=lambda: env)
        self.assertNotIn("\n", str(caught.exception), "the message is one line")
        self.assertEqual(env.executed, [], "nothing runs when the statements are not usable")

    def test_runs_the_statements_in_numeric_order(self):
        # JSON object order and string order (10 < 2) must both lose to the statement number.
        statements = {f"statement.{n}": f"STATEMENT {n}" for n in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9)}
        env, result = self.run_main([RUN_OPTIONS, sql_group(**statements)])
        self.assertEqual(env.executed, [f"STATEMENT {n}" for n in range(11)])
        self.assertIs(result, env.results[-1], "main returns the last (INSERT) result")

    def test_sets_the_session_time_zone_to_utc_before_any_statement(self):
        env, _ = self.run_main([sql_group(**{"statement.0": "CREATE TABLE t"})])
        self.assertEqual(env.config.values, {"table.local-time-zone": "UTC"})

    def test_waits_for_the_job_only_when_local(self):
        group = [sql_group(**{"statement.0": "CREATE", "statement.1": "INSERT"})]
        env, _ = self.run_main(group)
        self.assertFalse(env.results[-1].waited, "deployed, main() returns once the job is submitted")
        env, _ = self.run_main(group, IS_LOCAL="true")
        self.assertTrue(env.results[-1].waited)
        self.assertFalse(env.results[0].waited)

    def test_missing_file(self):
        env = StandInTableEnvironment()
        missing = os.path.join(tempfile.gettempdir(), "no-such-dir-iot-pipeline", "props.json")
        with self.assertRaisesRegex(main.ConfigurationError, r"no application properties at .*props\.json"):
            main.main(environ={"APPLICATION_PROPERTIES_FILE": missing}, table_env_factory=lambda: env)
        self.assertEqual(env.executed, [])

    def test_defaults_to_the_managed_flink_path(self):
        self.assertEqual(main.properties_file({}), "/etc/flink/application_properties.json")
        self.assertEqual(main.properties_file({"APPLICATION_PROPERTIES_FILE": "/x.json"}), "/x.json")

    def test_missing_group(self):
        self.assertConfigurationError([RUN_OPTIONS], r"property group sql\.statements is missing")

    def test_empty_group(self):
        self.assertConfigurationError([sql_group()], r"holds no statements")

    def test_gap_in_the_numbering(self):
        self.assertConfigurationError(
            [sql_group(**{"statement.0": "A", "statement.2": "C"})], r"has no statement\.1"
        )

    def test_blank_statement(self):
        self.assertConfigurationError(
            [sql_group(**{"statement.0": "   "})], r"sql\.statements/statement\.0 is empty"
        )

    def test_unknown_key(self):
        self.assertConfigurationError(
            [sql_group(**{"statement.0": "A", "stmt.1": "B"})], r"stmt\.1 is not a statement key"
        )

    def test_not_json(self):
        self.assertConfigurationError("{not json", r"is not JSON")

    def test_wrong_shape(self):
        self.assertConfigurationError({"sql.statements": {}}, r"must hold a list")


class CommandLineTest(unittest.TestCase):
    def test_a_missing_group_exits_non_zero_with_one_line(self):
        props = PropertiesFile([RUN_OPTIONS])
        self.addCleanup(props.close)
        done = subprocess.run(
            [sys.executable, os.path.join(HERE, "main.py")],
            env={**os.environ, **props.environ()},
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(done.returncode, 1)
        self.assertEqual(done.stdout, "")
        lines = done.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, done.stderr)
        self.assertRegex(lines[0], r"^main\.py: property group sql\.statements is missing")


if __name__ == "__main__":
    unittest.main()

// The end of `npm run simulate`'s summary on the embedded pipeline: the figures the stack's
// CloudWatch dashboard shows, and what its alarms would have flagged during the run, from the
// thresholds the stack config sets (the same values the program gives CloudWatch).
import { ALARM_DESCRIPTIONS } from "../core/monitoring";
import type { StackConfig } from "../core/stack-config";
import type { LocalPipeline } from "../local/pipeline/pipeline";
import type { Output } from "./options";

export function printMonitoring(out: Output, pipeline: LocalPipeline, config: StackConfig): void {
  const rows = pipeline.dashboard();
  const w = Math.max(...rows.map((r) => r.label.length));
  out.line("dashboard (what CloudWatch would show for this run):");
  for (const r of rows) out.line(`  ${r.label.padEnd(w)}  ${r.value}`);
  const a = config.monitoring.alarms;
  out.line(
    `alarms (${a.enabled ? "" : "off in this stack; "}thresholds from its config: rule errors > ${a.ruleErrorRatePercent}% per ${a.periodSeconds} s, a record waiting > ${a.deliveryFreshnessSeconds} s${a.presenceDisconnects === undefined ? "" : `, ${a.presenceDisconnects}+ devices gone per ${a.periodSeconds} s`}):`,
  );
  const findings = pipeline.alarmFindings();
  if (findings.length === 0) {
    out.line("  none would have fired");
    return;
  }
  for (const f of findings)
    out.line(`  WOULD FIRE ${f.kind}: ${f.message} (${ALARM_DESCRIPTIONS[f.kind]})`);
}

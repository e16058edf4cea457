// What every benchmark figure module receives and returns.
import type { FigureResult } from "./report";

export interface FigureOptions {
  /** Small sizes and short phases: proves the benchmark still works, measures little. */
  readonly quick: boolean;
  /** How long the soak's attack phase runs (default ten minutes; --quick: seconds). */
  readonly soakSeconds?: number;
  /** Where a figure keeps state worth reusing across runs (the fleet's certificates). */
  readonly stateDir: string;
  /** Progress lines for the person watching; never part of the result. */
  readonly log: (line: string) => void;
}

/** A figure's own part of the result; bench/child.ts adds the id, the title and the duration. */
export type FigureOutcome = Omit<FigureResult, "id" | "title" | "seconds">;

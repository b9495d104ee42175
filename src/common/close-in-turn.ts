/**
 * Runs each closing step in order, every one of them even when a step before it failed:
 * a disk that refuses one write must not leave the queue open or the audit trail
 * unwritten. Rejects afterwards with the failure, or with all of them (AggregateError,
 * their messages joined) when there were several.
 */
export async function closeInTurn(steps: (() => unknown)[]): Promise<void> {
  const failures: Error[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      failures.push(err as Error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, failures.map((e) => e.message).join('; '));
}

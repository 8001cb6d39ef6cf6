/** Small pure helpers for the sidebar's text. */
import type { Experiment, Progress, Run, Status } from './api';

const STATUS_ORDER: Status[] = ['running', 'queued', 'completed', 'failed', 'cancelled'];

/** "2 running · 1 queued · 3 completed", statuses with a zero count left out. */
export function countsText(counts: Experiment['counts']): string {
  const parts = STATUS_ORDER.filter(s => (counts[s] ?? 0) > 0).map(s => `${counts[s]} ${s}`);
  return parts.length ? parts.join(' · ') : 'no runs';
}

/** A fraction in [0, 1], or null when the total is not known yet. */
export function fraction(progress: Progress | null | undefined): number | null {
  if (!progress || !progress.total || progress.total <= 0) {
    return null;
  }
  return Math.max(0, Math.min(1, progress.done / progress.total));
}

/** "50 / 200 (25%)", or "50 done" without a total. */
export function progressText(progress: Progress | null | undefined): string {
  if (!progress || (!progress.done && !progress.total)) {
    return 'not started';
  }
  const f = fraction(progress);
  if (f === null) {
    return `${progress.done} done`;
  }
  return `${progress.done} / ${progress.total} (${Math.floor(f * 100)}%)`;
}

/** The words a user knows a run by: its model, checkpoint, runtime and task, else its name. */
export function runLabel(run: Run): string {
  const model = [run.model, run.checkpoint].filter(Boolean).join('@');
  const parts = [model, run.runtime, run.task].filter(Boolean);
  return parts.length ? parts.join(' · ') : run.name;
}

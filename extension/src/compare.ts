/**
 * A main-area view of one experiment's comparison table (runs × metrics), used when no
 * notebook is open to receive `%evalhub compare <id>`.
 */
import { Widget } from '@lumino/widgets';

import { CompareTable, EvalhubAPI, Experiment } from './api';
import { countsText, progressText } from './format';

function cell(tag: 'td' | 'th', text: string, className = ''): HTMLTableCellElement {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) {
    node.className = className;
  }
  return node;
}

function formatMetric(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '—';
  }
  if (Number.isInteger(value)) {
    return String(value);
  }
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(4);
}

export class ComparePanel extends Widget {
  constructor(
    private readonly api: EvalhubAPI,
    readonly experimentId: number
  ) {
    super();
    this.id = `evalhub-compare-${experimentId}`;
    this.addClass('jp-EvalhubCompare');
    this.title.label = `EvalHub #${experimentId}`;
    this.title.closable = true;
    this._heading = document.createElement('h2');
    this._summary = document.createElement('p');
    this._summary.className = 'jp-EvalhubCompare-summary';
    this._table = document.createElement('table');
    this._table.className = 'jp-EvalhubCompare-table';
    const hint = document.createElement('p');
    hint.className = 'jp-EvalhubCompare-hint';
    hint.textContent = `In a notebook, %evalhub compare ${experimentId} shows the interactive table with baseline deltas.`;
    this.node.append(this._heading, this._summary, this._table, hint);
  }

  /** Fetch the experiment and its comparison and draw them. */
  async refresh(): Promise<void> {
    try {
      const [experiment, table] = await Promise.all([
        this.api.experiment(this.experimentId),
        this.api.compare(this.experimentId)
      ]);
      this._draw(experiment, table);
    } catch (error) {
      this._heading.textContent = `Experiment ${this.experimentId}`;
      this._summary.textContent = error instanceof Error ? error.message : String(error);
      this._summary.dataset.state = 'error';
    }
  }

  private _draw(experiment: Experiment, table: CompareTable): void {
    this.title.label = `EvalHub: ${experiment.name}`;
    this._heading.textContent = `${experiment.name} (#${experiment.id})`;
    this._summary.dataset.state = 'ok';
    this._summary.textContent = `${experiment.status} · ${countsText(experiment.counts)} · ${progressText(experiment.progress)}`;
    const head = document.createElement('thead');
    const headRow = document.createElement('tr');
    for (const name of ['run', 'model', 'checkpoint', 'step', 'runtime', 'task', 'status', ...table.metrics]) {
      headRow.appendChild(cell('th', name));
    }
    head.appendChild(headRow);
    const body = document.createElement('tbody');
    for (const run of table.runs) {
      const row = document.createElement('tr');
      row.dataset.runId = String(run.run_id);
      row.append(
        cell('td', run.name),
        cell('td', run.model ?? '—'),
        cell('td', run.checkpoint ?? '—'),
        cell('td', run.step === null ? '—' : String(run.step)),
        cell('td', run.runtime ?? '—'),
        cell('td', run.task ?? '—'),
        cell('td', run.status)
      );
      for (const metric of table.metrics) {
        row.appendChild(cell('td', formatMetric(run.metrics[metric]), 'jp-EvalhubCompare-number'));
      }
      body.appendChild(row);
    }
    this._table.replaceChildren(head, body);
  }

  private readonly _heading: HTMLHeadingElement;
  private readonly _summary: HTMLParagraphElement;
  private readonly _table: HTMLTableElement;
}

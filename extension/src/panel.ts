/**
 * The EvalHub sidebar: connection status, the Ray dashboard link, running runs with live
 * progress, experiments (newest first) with status counts and progress bars, and annotation
 * queues with how far each person got (a click opens the labelling widget).
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { AnnotationQueue, EvalhubAPI, EvalhubConfig, Experiment, Health, Page, Progress, Run } from './api';
import { countsText, fraction, progressText, runLabel } from './format';

export interface ISidebarOptions {
  api: EvalhubAPI;
  /** Called when the user picks an experiment. */
  onOpenExperiment: (experiment: Experiment) => void;
  /** Called when the user asks for an experiment's page (its "page" button). */
  onOpenPage?: (experiment: Experiment) => void;
  /** Called when the user picks an annotation queue. */
  onOpenQueue?: (queue: AnnotationQueue) => void;
  /** Seconds between refreshes while the sidebar is visible. */
  refreshInterval?: number;
  maxExperiments?: number;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function progressBar(progress: Progress | null | undefined): HTMLElement {
  const bar = el('div', 'jp-EvalhubSidebar-bar');
  const fill = el('div', 'jp-EvalhubSidebar-barFill');
  const f = fraction(progress);
  bar.setAttribute('role', 'progressbar');
  bar.setAttribute('aria-valuemin', '0');
  bar.setAttribute('aria-valuemax', String(progress?.total ?? 0));
  bar.setAttribute('aria-valuenow', String(progress?.done ?? 0));
  if (f === null) {
    // Work is under way but its size is unknown: say so rather than draw a made-up fraction.
    if ((progress?.done ?? 0) > 0) {
      bar.classList.add('jp-mod-indeterminate');
    }
  } else {
    fill.style.width = `${(f * 100).toFixed(1)}%`;
  }
  bar.appendChild(fill);
  return bar;
}

export class EvalhubSidebar extends Widget {
  constructor(options: ISidebarOptions) {
    super();
    this._api = options.api;
    this._onOpen = options.onOpenExperiment;
    this._onOpenQueue = options.onOpenQueue ?? (() => undefined);
    this._onOpenPage = options.onOpenPage ?? (() => undefined);
    this._interval = options.refreshInterval ?? 2;
    this._maxExperiments = options.maxExperiments ?? 50;
    this.id = 'evalhub-sidebar';
    this.node.dataset.refreshInterval = String(this._interval);
    this.addClass('jp-EvalhubSidebar');
    this.title.caption = 'EvalHub';

    const header = el('div', 'jp-EvalhubSidebar-header');
    header.appendChild(el('h2', 'jp-EvalhubSidebar-title', 'EvalHub'));
    const refresh = el('button', 'jp-EvalhubSidebar-refresh jp-Button', '⟳');
    refresh.title = 'Refresh now';
    refresh.addEventListener('click', () => void this.refresh());
    header.appendChild(refresh);
    this.node.appendChild(header);

    this._status = el('div', 'jp-EvalhubSidebar-status');
    this._status.dataset.state = 'pending';
    this._status.appendChild(el('span', 'jp-EvalhubSidebar-dot'));
    this._statusText = el('span', 'jp-EvalhubSidebar-statusText', 'Connecting…');
    this._status.appendChild(this._statusText);
    this.node.appendChild(this._status);

    this._ray = el('a', 'jp-EvalhubSidebar-ray', 'Ray dashboard ↗');
    this._ray.target = '_blank';
    this._ray.rel = 'noopener noreferrer';
    this._rayMissing = el('div', 'jp-EvalhubSidebar-rayMissing', 'Ray dashboard: not configured (set EVALHUB_RAY_DASHBOARD)');
    this._ray.hidden = true;
    this.node.appendChild(this._ray);
    this.node.appendChild(this._rayMissing);

    const runs = el('section', 'jp-EvalhubSidebar-section');
    runs.dataset.section = 'runs';
    this._runsTitle = el('h3', 'jp-EvalhubSidebar-sectionTitle', 'Active runs');
    runs.appendChild(this._runsTitle);
    this._runs = el('ul', 'jp-EvalhubSidebar-list');
    runs.appendChild(this._runs);
    this.node.appendChild(runs);

    const experiments = el('section', 'jp-EvalhubSidebar-section');
    experiments.dataset.section = 'experiments';
    this._experimentsTitle = el('h3', 'jp-EvalhubSidebar-sectionTitle', 'Experiments');
    experiments.appendChild(this._experimentsTitle);
    this._experiments = el('ul', 'jp-EvalhubSidebar-list');
    experiments.appendChild(this._experiments);
    this.node.appendChild(experiments);

    const queues = el('section', 'jp-EvalhubSidebar-section');
    queues.dataset.section = 'queues';
    this._queuesTitle = el('h3', 'jp-EvalhubSidebar-sectionTitle', 'Annotation queues');
    queues.appendChild(this._queuesTitle);
    this._queues = el('ul', 'jp-EvalhubSidebar-list');
    queues.appendChild(this._queues);
    this.node.appendChild(queues);
  }

  /** Seconds between refreshes; takes effect at the next tick. */
  get refreshInterval(): number {
    return this._interval;
  }
  set refreshInterval(seconds: number) {
    this._interval = Math.max(0.25, seconds);
    this.node.dataset.refreshInterval = String(this._interval);
    this._schedule();
  }

  get maxExperiments(): number {
    return this._maxExperiments;
  }
  set maxExperiments(n: number) {
    this._maxExperiments = Math.max(1, Math.min(1000, Math.floor(n)));
  }

  /** Fetch everything once and redraw. Concurrent calls share one fetch. */
  refresh(): Promise<void> {
    if (!this._pending) {
      this._pending = this._refresh().finally(() => {
        this._pending = null;
      });
    }
    return this._pending;
  }

  dispose(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._schedule();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
  }

  private _schedule(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    if (this.isDisposed) {
      return;
    }
    this._timer = window.setTimeout(async () => {
      this._timer = null;
      // Poll only while someone can see the panel; showing it refreshes at once.
      if (this.isVisible) {
        await this.refresh();
      }
      this._schedule();
    }, this._interval * 1000);
  }

  private async _refresh(): Promise<void> {
    let config: EvalhubConfig | null = null;
    try {
      config = await this._api.config();
    } catch (error) {
      this._showProblem(`Jupyter server extension evalhub_jupyter not reachable: ${String(error)}`);
      return;
    }
    this._showRay(config.ray_dashboard_url);
    if (!config.server_url) {
      this._showProblem(config.problem ?? 'No evalhub tracking server is configured.');
      this._drawRuns(null);
      this._drawExperiments(null);
      return;
    }
    let health: Health;
    let experiments: Page<Experiment>;
    let runs: Page<Run>;
    let queues: Page<AnnotationQueue> | null;
    try {
      [health, experiments, runs, queues] = await Promise.all([
        this._api.health(),
        this._api.experiments(this._maxExperiments),
        this._api.activeRuns(100),
        this._api.queues(100).catch(() => null) // a server older than the queues has none
      ]);
    } catch (error) {
      this._showProblem(error instanceof Error ? error.message : String(error));
      return;
    }
    this._status.dataset.state = 'ok';
    this.node.classList.remove('jp-mod-stale');
    const where = config.source === 'embedded' ? 'embedded server' : config.server_url;
    this._statusText.textContent = `Connected to ${where} (evalhub ${health.version}, ${health.db})`;
    this._status.title = `${config.server_url}${config.project ? ` · project ${config.project}` : ''}`;
    this._drawRuns(runs);
    this._drawExperiments(experiments);
    this._drawQueues(queues);
  }

  private _showProblem(message: string): void {
    // Keep the last lists on screen, greyed out: still useful, but no longer live.
    this.node.classList.add('jp-mod-stale');
    this._status.dataset.state = 'error';
    this._statusText.textContent = message;
    this._status.title = message;
  }

  private _showRay(url: string | null): void {
    // Only http(s) links: the value comes from configuration, but a javascript: URL must never be clickable.
    const ok = !!url && /^https?:\/\//i.test(url);
    this._ray.hidden = !ok;
    this._rayMissing.hidden = ok;
    if (ok) {
      this._ray.href = url as string;
      this._ray.title = url as string;
    }
  }

  private _drawRuns(page: Page<Run> | null): void {
    this._runs.replaceChildren();
    const items = page?.items ?? [];
    this._runsTitle.textContent = page ? `Active runs (${page.total})` : 'Active runs';
    if (!items.length) {
      this._runs.appendChild(el('li', 'jp-EvalhubSidebar-empty', page ? 'No run is running.' : '—'));
      return;
    }
    for (const run of items) {
      const li = el('li', 'jp-EvalhubSidebar-run');
      li.dataset.runId = String(run.id);
      const top = el('div', 'jp-EvalhubSidebar-row');
      top.appendChild(el('span', 'jp-EvalhubSidebar-name', runLabel(run)));
      top.appendChild(el('span', 'jp-EvalhubSidebar-id', `run ${run.id}`));
      li.appendChild(top);
      li.appendChild(progressBar(run.progress));
      li.appendChild(el('div', 'jp-EvalhubSidebar-progressText', progressText(run.progress)));
      li.title = `${run.name}${run.experiment_id !== null ? ` · experiment ${run.experiment_id}` : ''}`;
      this._runs.appendChild(li);
    }
  }

  private _drawExperiments(page: Page<Experiment> | null): void {
    this._experiments.replaceChildren();
    const items = page?.items ?? [];
    this._experimentsTitle.textContent = page
      ? `Experiments (${items.length < page.total ? `${items.length} of ${page.total}` : page.total})`
      : 'Experiments';
    if (!items.length) {
      this._experiments.appendChild(
        el('li', 'jp-EvalhubSidebar-empty', page ? 'No experiment yet: %%evalhub experiment starts one.' : '—')
      );
      return;
    }
    for (const experiment of items) {
      const li = el('li', 'jp-EvalhubSidebar-experiment');
      li.dataset.experimentId = String(experiment.id);
      li.dataset.status = experiment.status;
      li.tabIndex = 0;
      li.setAttribute('role', 'button');
      li.title = `Insert %evalhub compare ${experiment.id} below the active cell and run it`;
      const top = el('div', 'jp-EvalhubSidebar-row');
      top.appendChild(el('span', 'jp-EvalhubSidebar-name', experiment.name));
      const badge = el('span', 'jp-EvalhubSidebar-badge', experiment.status);
      badge.dataset.status = experiment.status;
      top.appendChild(badge);
      const pageButton = el('button', 'jp-EvalhubSidebar-page', 'page');
      pageButton.title = `Insert %evalhub page ${experiment.id} (table, curves, diff, slices, judges, queues) and run it`;
      pageButton.addEventListener('click', event => {
        event.stopPropagation(); // not also the experiment's own click (the comparison cell)
        this._onOpenPage(experiment);
      });
      top.appendChild(pageButton);
      li.appendChild(top);
      li.appendChild(el('div', 'jp-EvalhubSidebar-counts', `#${experiment.id} · ${countsText(experiment.counts)}`));
      li.appendChild(progressBar(experiment.progress));
      li.appendChild(el('div', 'jp-EvalhubSidebar-progressText', progressText(experiment.progress)));
      li.addEventListener('click', () => this._onOpen(experiment));
      li.addEventListener('keydown', event => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          this._onOpen(experiment);
        }
      });
      this._experiments.appendChild(li);
    }
  }

  private _drawQueues(page: Page<AnnotationQueue> | null): void {
    this._queues.replaceChildren();
    const items = page?.items ?? [];
    this._queuesTitle.textContent = page ? `Annotation queues (${page.total})` : 'Annotation queues';
    if (!items.length) {
      this._queues.appendChild(
        el('li', 'jp-EvalhubSidebar-empty', page ? 'No queue yet: hub.annotation_queue(exp, name, schema).' : '—')
      );
      return;
    }
    for (const queue of items) {
      const p = queue.progress;
      const li = el('li', 'jp-EvalhubSidebar-queue');
      li.dataset.queueId = String(queue.id);
      li.dataset.labelled = String(p.labelled);
      li.tabIndex = 0;
      li.setAttribute('role', 'button');
      li.title = `Insert evalhub.annotate(${queue.id}) below the active cell and run it`;
      const top = el('div', 'jp-EvalhubSidebar-row');
      top.appendChild(el('span', 'jp-EvalhubSidebar-name', queue.name));
      top.appendChild(el('span', 'jp-EvalhubSidebar-badge', queue.schema.kind));
      li.appendChild(top);
      li.appendChild(
        el('div', 'jp-EvalhubSidebar-counts', `#${queue.id} · experiment ${queue.experiment_id} · ${queue.task}`)
      );
      li.appendChild(progressBar({ done: p.labelled, total: p.total } as Progress));
      const people = p.people.map(x => `${x.person} ${x.labelled}`).join(' · ');
      li.appendChild(
        el('div', 'jp-EvalhubSidebar-progressText', `${p.labelled}/${p.total} labelled${people ? ` · ${people}` : ''}`)
      );
      li.addEventListener('click', () => this._onOpenQueue(queue));
      li.addEventListener('keydown', event => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          this._onOpenQueue(queue);
        }
      });
      this._queues.appendChild(li);
    }
  }

  private readonly _api: EvalhubAPI;
  private readonly _onOpenQueue: (queue: AnnotationQueue) => void;
  private readonly _onOpenPage: (experiment: Experiment) => void;
  private readonly _queuesTitle: HTMLHeadingElement;
  private readonly _queues: HTMLUListElement;
  private readonly _onOpen: (experiment: Experiment) => void;
  private _interval: number;
  private _maxExperiments: number;
  private _timer: number | null = null;
  private _pending: Promise<void> | null = null;
  private readonly _status: HTMLDivElement;
  private readonly _statusText: HTMLSpanElement;
  private readonly _ray: HTMLAnchorElement;
  private readonly _rayMissing: HTMLDivElement;
  private readonly _runsTitle: HTMLHeadingElement;
  private readonly _runs: HTMLUListElement;
  private readonly _experimentsTitle: HTMLHeadingElement;
  private readonly _experiments: HTMLUListElement;
}

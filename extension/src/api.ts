/**
 * The sidebar's view of evalhub: typed calls to the Jupyter server extension, which proxies
 * `/evalhub/api/*` to the tracking server (same origin only; the Jupyter token/XSRF travel with
 * `ServerConnection`).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface Progress {
  done: number;
  total: number;
}

export type Status = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface Experiment {
  id: number;
  name: string;
  status: Status;
  counts: Partial<Record<Status, number>>;
  progress: Progress;
  created_at: string;
}

export interface Run {
  id: number;
  name: string;
  type: string;
  status: Status;
  experiment_id: number | null;
  model: string | null;
  checkpoint: string | null;
  runtime: string | null;
  task: string | null;
  progress: Progress | null;
  started_at: string | null;
}

/** An annotation queue with its progress (who labelled how many of its items). */
export interface AnnotationQueue {
  id: number;
  name: string;
  experiment_id: number;
  task: string;
  schema: { kind: string; question?: string };
  progress: {
    total: number;
    labelled: number;
    labels: number;
    people: { person: string; labelled: number; total: number }[];
  };
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface Health {
  status: string;
  version: string;
  db: string;
  auth: boolean;
}

/** What `/evalhub/config` says about the tracking server and the Ray dashboard. */
export interface EvalhubConfig {
  version: string;
  api_base: string;
  server_url: string | null;
  source: 'config' | 'env' | 'embedded' | null;
  project: string | null;
  authenticated: boolean;
  ray_dashboard_url: string | null;
  problem: string | null;
}

export interface CompareRow {
  run_id: number;
  name: string;
  model: string | null;
  checkpoint: string | null;
  step: number | null;
  runtime: string | null;
  task: string | null;
  status: Status;
  metrics: Record<string, number | null>;
}

export interface CompareTable {
  experiment_id: number;
  metrics: string[];
  runs: CompareRow[];
}

/** An error answered by the proxy or the tracking server, in the tracking server's shape. */
export class EvalhubRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string
  ) {
    super(message);
    this.name = 'EvalhubRequestError';
  }
}

/** Calls to the evalhub server extension. */
export class EvalhubAPI {
  constructor(
    private readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** GET (or any method) a path relative to the Jupyter base URL; JSON in, JSON out. */
  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const url = URLExt.join(this.serverSettings.baseUrl, path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.serverSettings);
    } catch (error) {
      throw new EvalhubRequestError(`The Jupyter server did not answer: ${String(error)}`, 0, 'network');
    }
    const text = await response.text();
    let data: any = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const error = data?.error;
      const message: string =
        error?.message ?? data?.message ?? `${response.status} ${response.statusText || 'error'} from ${path}`;
      throw new EvalhubRequestError(message, response.status, error?.code ?? 'http');
    }
    return data as T;
  }

  config(): Promise<EvalhubConfig> {
    return this.request<EvalhubConfig>('evalhub/config');
  }

  health(): Promise<Health> {
    return this.request<Health>('evalhub/api/health');
  }

  /** Experiments, newest first. */
  experiments(limit: number): Promise<Page<Experiment>> {
    return this.request<Page<Experiment>>(`evalhub/api/experiments?limit=${limit}`);
  }

  /** Runs whose status is `running`. */
  activeRuns(limit: number): Promise<Page<Run>> {
    return this.request<Page<Run>>(`evalhub/api/runs?status=running&limit=${limit}`);
  }

  /** Annotation queues, oldest first, with their progress. */
  queues(limit: number): Promise<Page<AnnotationQueue>> {
    return this.request<Page<AnnotationQueue>>(`evalhub/api/annotation-queues?limit=${limit}`);
  }

  experiment(id: number): Promise<Experiment> {
    return this.request<Experiment>(`evalhub/api/experiments/${id}`);
  }

  compare(id: number): Promise<CompareTable> {
    return this.request<CompareTable>(`evalhub/api/experiments/${id}/compare`);
  }
}

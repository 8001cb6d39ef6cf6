/**
 * evalhub-jupyter: the EvalHub sidebar for JupyterLab.
 *
 * Lists experiments and running runs from the tracking server (through the evalhub_jupyter
 * server extension), links the Ray dashboard, and turns a click on an experiment into a
 * `%evalhub compare <id>` cell in the active notebook (its "page" button into `%evalhub page <id>`,
 * the whole experiment in one widget), a click on an annotation queue into an
 * `evalhub.annotate(<id>)` cell (the keyboard-first labelling widget).
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { AnnotationQueue, EvalhubAPI, Experiment } from './api';
import { ComparePanel } from './compare';
import { EvalhubSidebar } from './panel';

const PLUGIN_ID = 'evalhub-jupyter:plugin';

namespace CommandIDs {
  export const compare = 'evalhub:compare';
  export const page = 'evalhub:page';
  export const annotate = 'evalhub:annotate';
  export const show = 'evalhub:show-sidebar';
  export const refresh = 'evalhub:refresh';
}

export const evalhubIcon = new LabIcon({
  name: 'evalhub-jupyter:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<rect x="3" y="12" width="4" height="9" rx="1"/><rect x="10" y="7" width="4" height="14" rx="1"/>' +
    '<rect x="17" y="3" width="4" height="18" rx="1"/></g></svg>'
});

/** Loads the magics in the kernel without output, so the inserted cell works in a fresh kernel. */
const LOAD_MAGICS =
  'try:\n' +
  '    get_ipython().extension_manager.load_extension("evalhub.magics")\n' +
  'except Exception:\n' +
  '    pass\n';

/** The cell the sidebar writes for an experiment. */
export function compareSource(id: number): string {
  return `%evalhub compare ${id}`;
}

/** The cell the sidebar's "page" button writes for an experiment. */
export function pageSource(id: number): string {
  return `%evalhub page ${id}`;
}

/** The cell the sidebar writes for an annotation queue. */
export function annotateSource(id: number): string {
  return `import evalhub\nevalhub.annotate(${id})`;
}

async function insertCompareCell(panel: NotebookPanel, id: number, loadMagics: boolean): Promise<void> {
  await insertCell(panel, compareSource(id), loadMagics);
}

async function insertCell(panel: NotebookPanel, source: string, loadMagics: boolean): Promise<void> {
  // A click right after opening a notebook must wait for its kernel, or the cell would be
  // inserted but never run.
  await Promise.all([panel.context.ready, panel.sessionContext.ready]);
  const notebook = panel.content;
  NotebookActions.insertBelow(notebook);
  if (notebook.activeCell?.model.type !== 'code') {
    NotebookActions.changeCellType(notebook, 'code');
  }
  const cell = notebook.activeCell;
  if (!cell) {
    return;
  }
  cell.model.sharedModel.setSource(source);
  const kernel = panel.sessionContext.session?.kernel;
  if (loadMagics && kernel) {
    // Queued before the cell's own request on the same shell channel, so it runs first.
    kernel.requestExecute({ code: LOAD_MAGICS, silent: true, store_history: false });
  }
  await NotebookActions.runCells(notebook, [cell], panel.sessionContext);
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'EvalHub sidebar: experiments, live runs and the Ray dashboard.',
  autoStart: true,
  optional: [ILayoutRestorer, ISettingRegistry, INotebookTracker, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    notebooks: INotebookTracker | null,
    palette: ICommandPalette | null
  ) => {
    const api = new EvalhubAPI(app.serviceManager.serverSettings);
    let loadMagics = true;

    const sidebar = new EvalhubSidebar({
      api,
      onOpenExperiment: (experiment: Experiment) =>
        void app.commands.execute(CommandIDs.compare, { id: experiment.id }),
      onOpenPage: (experiment: Experiment) => void app.commands.execute(CommandIDs.page, { id: experiment.id }),
      onOpenQueue: (queue: AnnotationQueue) => void app.commands.execute(CommandIDs.annotate, { id: queue.id })
    });
    sidebar.title.icon = evalhubIcon;
    app.shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, 'evalhub-sidebar');

    app.commands.addCommand(CommandIDs.compare, {
      label: args => (args.id !== undefined ? `EvalHub: compare experiment ${args.id}` : 'EvalHub: compare'),
      describedBy: {
        args: {
          type: 'object',
          properties: { id: { type: 'number', description: 'Experiment id' } },
          required: ['id']
        }
      },
      execute: async args => {
        const id = Number(args.id);
        if (!Number.isInteger(id)) {
          throw new Error(`evalhub:compare needs an integer experiment id, got ${String(args.id)}`);
        }
        const panel = notebooks?.currentWidget;
        if (panel) {
          app.shell.activateById(panel.id);
          await insertCompareCell(panel, id, loadMagics);
          return;
        }
        const view = new ComparePanel(api, id);
        const widget = new MainAreaWidget({ content: view });
        widget.id = view.id;
        widget.title.label = view.title.label;
        widget.title.icon = evalhubIcon;
        widget.title.closable = true;
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        await view.refresh();
        widget.title.label = view.title.label;
      }
    });
    /** A command that inserts and runs one cell for an experiment or queue id in the open notebook. */
    const addCellCommand = (
      command: string,
      what: string,
      label: (id: unknown) => string,
      source: (id: number) => string,
      withMagics: () => boolean,
      noNotebook: string
    ): void => {
      app.commands.addCommand(command, {
        label: args => label(args.id),
        describedBy: {
          args: {
            type: 'object',
            properties: { id: { type: 'number', description: what } },
            required: ['id']
          }
        },
        execute: async args => {
          const id = Number(args.id);
          if (!Number.isInteger(id)) {
            throw new Error(`${command} needs an integer ${what.toLowerCase()}, got ${String(args.id)}`);
          }
          const panel = notebooks?.currentWidget;
          if (!panel) {
            throw new Error(noNotebook);
          }
          app.shell.activateById(panel.id);
          await insertCell(panel, source(id), withMagics());
        }
      });
    };
    addCellCommand(
      CommandIDs.page,
      'Experiment id',
      id => (id !== undefined ? `EvalHub: page of experiment ${id}` : 'EvalHub: experiment page'),
      pageSource,
      () => loadMagics,
      'open a notebook first: the experiment page is a notebook widget'
    );
    addCellCommand(
      CommandIDs.annotate,
      'Annotation queue id',
      id => (id !== undefined ? `EvalHub: label queue ${id}` : 'EvalHub: label a queue'),
      annotateSource,
      () => false,
      'open a notebook first: the queue is labelled in a notebook widget'
    );
    app.commands.addCommand(CommandIDs.show, {
      label: 'Show EvalHub sidebar',
      execute: () => app.shell.activateById(sidebar.id)
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh EvalHub sidebar',
      execute: () => sidebar.refresh()
    });
    palette?.addItem({ command: CommandIDs.show, category: 'EvalHub' });
    palette?.addItem({ command: CommandIDs.refresh, category: 'EvalHub' });

    if (settingRegistry) {
      void settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = (): void => {
            sidebar.refreshInterval = settings.get('refreshInterval').composite as number;
            sidebar.maxExperiments = settings.get('maxExperiments').composite as number;
            loadMagics = settings.get('loadMagics').composite as boolean;
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => console.error('evalhub-jupyter: could not load settings', reason));
    }
  }
};

export default plugin;

// jupyter-orch's JupyterLab extension: the Orchestrator sidebar and "Run as job".
import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton, WidgetTracker } from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { showErrorMessage } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { AccordionPanel } from '@lumino/widgets';
import { OrchApi, wsUrl } from './api';
import { OrchController } from './controller';
import { OrchDashboard } from './dashboard/dashboard';
import { PANELS } from './dashboard/panels';
import { OPEN_LOG_EVENT } from './dashboard/timeline';
import { h } from './dom';
import { orchIcon } from './icon';
import { IJobDefaults, runAsJob } from './jobdialog';
import { IOpenDashboard, OPEN_DASHBOARD_EVENT } from './runsview';
import { OrchSidebar } from './sidebar';
import { OrchStore } from './store';

const PLUGIN_ID = 'jupyter-orch:plugin';

export namespace CommandIDs {
  export const open = 'jupyter-orch:open';
  export const runAsJob = 'jupyter-orch:run-as-job';
  export const reconnect = 'jupyter-orch:reconnect';
  export const showActive = 'jupyter-orch:show-active';
  export const dashboard = 'jupyter-orch:dashboard';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The Orchestrator sidebar (runs, workflow DAG, searches, workers and GPUs, live logs) and Run as job.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry, IFileBrowserFactory, INotebookTracker, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    browserFactory: IFileBrowserFactory | null,
    notebooks: INotebookTracker | null
  ) => {
    const serverSettings = ServerConnection.makeSettings();
    const fetcher = (url: string, init: RequestInit) => ServerConnection.makeRequest(url, init, serverSettings);
    const api = new OrchApi(serverSettings.baseUrl, fetcher);
    const store = new OrchStore(cb => requestAnimationFrame(() => cb()));
    const socketUrl = (path: string, query?: Record<string, string>) =>
      wsUrl(serverSettings.wsUrl, path, query, serverSettings.token);
    const ctl = new OrchController({
      api,
      store,
      eventsUrl: () => socketUrl('events', { types: 'task,worker,run,search' }),
      logUrl: id => socketUrl(`tasks/${encodeURIComponent(id)}/logs/follow`)
    });
    const defaults: IJobDefaults = { gpus: 0, cpus: 1, memory: '', image: '' };
    let logCapacity = 10000;
    const sidebar = new OrchSidebar(ctl, logCapacity);
    app.shell.add(sidebar, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(sidebar, 'jupyter-orch-sidebar');
    }

    const applySettings = (s: ISettingRegistry.ISettings) => {
      const c = s.composite as Record<string, unknown>;
      ctl.maxRows = Number(c.maxRows) || 5000;
      store.maxTasks = ctl.maxRows;
      logCapacity = Number(c.logBufferLines) || 10000;
      sidebar.logs.setCapacity(logCapacity);
      defaults.gpus = Number(c.defaultGpus ?? 0);
      defaults.cpus = Number(c.defaultCpus ?? 1);
      defaults.memory = String(c.defaultMemory ?? '');
      defaults.image = String(c.defaultImage ?? '');
    };
    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(s => {
          applySettings(s);
          s.changed.connect(applySettings);
        })
        .catch(reason => console.warn('jupyter-orch: settings not loaded', reason));
    }
    void ctl.start();

    const readNotebook = async (path: string) => {
      const model = await app.serviceManager.contents.get(path, { content: true, type: 'notebook' });
      return model.content as { cells?: unknown[] };
    };

    const currentNotebookPath = (fromBrowser = false): string | null => {
      // from the file browser's context menu: the item right-clicked (it is selected)
      const browser = browserFactory?.tracker.currentWidget;
      if (fromBrowser && browser) {
        const hit = app.contextMenuHitTest(node => node.classList.contains('jp-DirListing-item'));
        const name = hit?.querySelector('.jp-DirListing-itemText')?.textContent?.trim();
        if (name && name.endsWith('.ipynb')) {
          return browser.model.path ? `${browser.model.path}/${name}` : name;
        }
        const first = browser.selectedItems().next();
        const item = first.done ? undefined : first.value;
        if (item && item.path.endsWith('.ipynb')) {
          return item.path;
        }
      }
      const current = app.shell.currentWidget;
      if (notebooks?.currentWidget && current === notebooks.currentWidget) {
        return notebooks.currentWidget.context.path;
      }
      if (browser) {
        const first = browser.selectedItems().next();
        const item = first.done ? undefined : first.value;
        if (item && item.path.endsWith('.ipynb')) {
          return item.path;
        }
      }
      return notebooks?.currentWidget?.context.path ?? null;
    };

    const submit = async (path: string, panel?: NotebookPanel) => {
      if (panel && panel.context.model.dirty) {
        await panel.context.save();
      }
      try {
        const task = await runAsJob(api, path, defaults, readNotebook);
        if (task) {
          store.putTask(task);
          app.shell.activateById(sidebar.id);
          ctl.selectRow('task', task.id);
          store.setFilter({ text: '', state: '' });
          requestAnimationFrame(() => sidebar.runs.reveal(task.id));
        }
      } catch (err) {
        await showErrorMessage('Run as job failed', err as Error);
      }
    };

    app.commands.addCommand(CommandIDs.open, {
      label: 'Orchestrator: Show Sidebar',
      caption: 'Runs, workflow DAGs, hyperparameter searches, workers and live logs',
      icon: orchIcon,
      execute: () => app.shell.activateById(sidebar.id)
    });
    app.commands.addCommand(CommandIDs.runAsJob, {
      label: 'Run as Job…',
      caption: 'Run this notebook on a worker with parameters and resources',
      icon: orchIcon,
      isEnabled: args => !!args.path || !!currentNotebookPath(!!args.fromBrowser),
      execute: args => {
        const path = (args.path as string) || currentNotebookPath(!!args.fromBrowser);
        if (!path) {
          return showErrorMessage('Run as job', 'Open or select a notebook (.ipynb) first.');
        }
        const panel = notebooks?.find(w => w.context.path === path) ?? undefined;
        return submit(path, panel);
      }
    });
    app.commands.addCommand(CommandIDs.reconnect, {
      label: 'Orchestrator: Reconnect and Reload',
      execute: () => ctl.reconnect()
    });
    app.commands.addCommand(CommandIDs.showActive, {
      label: 'Orchestrator: Show Active Runs',
      execute: () => {
        app.shell.activateById(sidebar.id);
        store.setFilter({ state: 'active' });
      }
    });
    // ---- the Orchestrator dashboard (main area): one instance, restored with the layout
    const dashboards = new WidgetTracker<OrchDashboard>({ namespace: 'jupyter-orch-dashboard' });
    let dashboard: OrchDashboard | null = null;
    /** the sidebar with its Logs section open (a timeline bar was clicked) */
    const showLogs = () => {
      app.shell.activateById(sidebar.id);
      const sections = sidebar.content as AccordionPanel;
      const i = sections.widgets.indexOf(sidebar.logs);
      if (i >= 0 && typeof sections.expand === 'function') {
        sections.expand(i);
      }
    };
    app.commands.addCommand(CommandIDs.dashboard, {
      label: 'Orchestrator: open dashboard',
      caption: 'The GPU timeline, the queue and more, in the main area',
      icon: orchIcon,
      execute: args => {
        if (!dashboard || dashboard.isDisposed) {
          dashboard = new OrchDashboard(ctl, PANELS);
          dashboard.node.addEventListener(OPEN_LOG_EVENT, () => showLogs());
          const created = dashboard;
          created.onPanelChanged = () => void dashboards.save(created);
          void dashboards.add(dashboard);
        }
        if (!dashboard.isAttached) {
          app.shell.add(dashboard, 'main');
        }
        const panel = typeof args.panel === 'string' ? args.panel : '';
        if (panel) {
          dashboard.select(panel);
        }
        if (typeof args.task === 'string' && args.task) {
          ctl.selectRow('task', args.task);
        } else if (typeof args.run === 'string' && args.run) {
          ctl.selectRow('workflow', args.run);
        }
        app.shell.activateById(dashboard.id);
        void dashboards.save(dashboard);
        return dashboard;
      }
    });
    // a runs row's dashboard button: the dashboard on that run's DAG or that task
    sidebar.node.addEventListener(OPEN_DASHBOARD_EVENT, ev => {
      const { panel, kind, id } = (ev as CustomEvent<IOpenDashboard>).detail;
      void app.commands.execute(CommandIDs.dashboard, kind === 'workflow' ? { panel, run: id } : { panel, task: id });
    });
    if (restorer) {
      void restorer.restore(dashboards, {
        command: CommandIDs.dashboard,
        args: w => ({ panel: w.currentPanel || '' }),
        name: () => 'dashboard'
      });
    }
    // a button in the sidebar's heading opens it
    const heading = sidebar.header.widgets[0]?.node;
    if (heading) {
      const open = h('button', {
        class: 'jp-OrchButton jp-OrchDashButton',
        'data-testid': 'orch-open-dashboard',
        title: 'Open the Orchestrator dashboard (GPU timeline, queue) in the main area',
        'aria-label': 'Open the Orchestrator dashboard',
        text: 'Dashboard'
      });
      open.addEventListener('click', () => void app.commands.execute(CommandIDs.dashboard));
      heading.append(open);
    }

    if (palette) {
      for (const command of [CommandIDs.open, CommandIDs.dashboard, CommandIDs.runAsJob, CommandIDs.reconnect, CommandIDs.showActive]) {
        palette.addItem({ command, category: 'Orchestrator' });
      }
    }
    app.contextMenu.addItem({
      command: CommandIDs.runAsJob,
      args: { fromBrowser: true },
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 10
    });
    app.docRegistry.addWidgetExtension('Notebook', new RunAsJobButton(app));
  }
};

class RunAsJobButton implements DocumentRegistry.IWidgetExtension<NotebookPanel, any> {
  constructor(private readonly app: JupyterFrontEnd) {}

  createNew(panel: NotebookPanel): IDisposable {
    const button = new ToolbarButton({
      className: 'jp-OrchRunAsJob',
      icon: orchIcon,
      label: 'Run as job',
      tooltip: 'Run this notebook on a worker (parameters, GPUs, image)',
      onClick: () => void this.app.commands.execute(CommandIDs.runAsJob, { path: panel.context.path })
    });
    button.node.dataset.testid = 'orch-run-as-job';
    panel.toolbar.insertAfter('cellType', 'orch-run-as-job', button);
    return new DisposableDelegate(() => button.dispose());
  }
}

export default plugin;

// The "Orchestrator" sidebar: Runs, Workflow steps, Searches, Workers and Logs as sections of one panel,
// with a connection indicator in its toolbar; and Admin (every user's work) for those who may
// read all on a shared server, added once the server says so (GET /info's rights).
import { SidePanel } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import { AdminModel } from './admin';
import { AdminView } from './adminview';
import type { OrchController } from './controller';
import { DagView } from './dagview';
import { LogsView } from './logsview';
import { RunsView } from './runsview';
import { SearchesView } from './searchesview';
import { WorkersView } from './workersview';
import { orchIcon } from './icon';

export class OrchSidebar extends SidePanel {
  readonly runs: RunsView;
  readonly dag: DagView;
  readonly searches: SearchesView;
  readonly workers: WorkersView;
  readonly logs: LogsView;
  /** every user's work: only for one who may read all, on a shared server */
  admin: AdminView | null = null;
  private indicator: HTMLSpanElement;

  constructor(
    readonly ctl: OrchController,
    logCapacity: number
  ) {
    super();
    this.id = 'jupyter-orch-sidebar';
    this.addClass('jp-OrchSidebar');
    this.title.icon = orchIcon;
    this.title.caption = 'Orchestrator';
    this.title.label = '';
    const heading = new Widget();
    heading.addClass('jp-OrchSidebar-heading');
    this.indicator = document.createElement('span');
    this.indicator.className = 'jp-OrchConnection';
    this.indicator.dataset.testid = 'orch-connection';
    this.indicator.dataset.state = 'closed';
    const name = document.createElement('h2');
    name.textContent = 'Orchestrator';
    heading.node.append(name, this.indicator);
    this.header.addWidget(heading);
    this.runs = new RunsView(ctl);
    this.dag = new DagView(ctl);
    this.searches = new SearchesView(ctl);
    this.workers = new WorkersView(ctl);
    this.logs = new LogsView(ctl, logCapacity);
    this.addWidget(this.runs);
    this.addWidget(this.dag);
    this.addWidget(this.searches);
    this.addWidget(this.workers);
    this.addWidget(this.logs);
    ctl.store.subscribe(() => {
      this.renderIndicator();
      this.syncAdmin();
    });
    this.renderIndicator();
  }

  /** Add the admin view once the server says the caller may read all (never otherwise). */
  private syncAdmin(): void {
    const info = this.ctl.info;
    if (this.admin || !info?.shared || !info.rights?.read_all) {
      return;
    }
    const model = new AdminModel(this.ctl.api);
    const view = (this.admin = new AdminView(this.ctl, model));
    const offTask = this.ctl.onTask(task => model.applyTask(task));
    const offReload = this.ctl.onReload(() => void model.load());
    view.disposed.connect(() => {
      offTask();
      offReload();
      model.dispose();
    });
    this.insertWidget(1, view);
    void model.load();
  }

  private renderIndicator(): void {
    const state = this.ctl.connection;
    const info = this.ctl.info;
    this.indicator.dataset.state = state;
    this.indicator.textContent = state === 'open' ? '● live' : this.ctl.error ? '● offline' : '● connecting…';
    this.indicator.title =
      state === 'open'
        ? `Connected to jupyter-orch ${info?.version || ''} (provider ${info?.provider || '?'}); updates arrive live`
        : this.ctl.error?.message || 'Not connected to the orchestrator’s events; reconnecting by itself';
  }
}

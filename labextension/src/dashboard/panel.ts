// What a panel of the Orchestrator dashboard (the main-area widget) is: a DOM node the
// dashboard places, told when it is shown and when the store changed. Panels read the
// store and call the API through the controller; they never import each other.
import { OrchController } from '../controller';

export interface IDashboardPanel {
  /** Stable id: used in data-testid="orch-dash-<id>" and to open the dashboard on it. */
  readonly id: string;
  /** The tab's title. */
  readonly title: string;
  readonly node: HTMLElement;
  /** The panel became visible (or its size changed): lay out and draw. */
  shown(): void;
  /** The panel is hidden: stop timers and animation frames. */
  hidden(): void;
  dispose(): void;
}

export type PanelFactory = (ctl: OrchController) => IDashboardPanel;

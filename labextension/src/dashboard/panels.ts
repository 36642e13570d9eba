// The dashboard's panels, in tab order. Each panel module adds its own entry here.
import { PanelFactory } from './panel';
import { AdminPanel } from './adminpanel';
import { QueuePanel } from './queuepanel';
import { TimelinePanel } from './timeline';
import { DagPanel } from './dagpanel';
import { ExperimentsPanel } from './experimentspanel';

export const PANELS: Array<{ id: string; create: PanelFactory }> = [
  { id: 'timeline', create: ctl => new TimelinePanel(ctl) },
  { id: 'queue', create: ctl => new QueuePanel(ctl) },
  { id: 'dag', create: ctl => new DagPanel(ctl) },
  { id: 'experiments', create: ctl => new ExperimentsPanel(ctl) },
  // (other panels here)
  { id: 'admin', create: ctl => new AdminPanel(ctl) }
];

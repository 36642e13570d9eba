// "Run as job": a dialog with the notebook's parameters (pre-filled from its `parameters`
// cell), resources and image; submits the notebook as a task.
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import type { OrchApi, INotebookJob } from './api';
import { OrchApiError } from './api';
import { h } from './dom';
import { coerce, displayValue, parseParametersCell } from './params';
import type { IParameter, ITask } from './types';

export interface IJobDefaults {
  gpus: number;
  cpus: number;
  memory: string;
  image: string;
}

class JobForm extends Widget {
  private inputs = new Map<string, HTMLInputElement>();
  readonly gpus: HTMLInputElement;
  readonly cpus: HTMLInputElement;
  readonly memory: HTMLInputElement;
  readonly image: HTMLInputElement;

  constructor(
    readonly path: string,
    readonly params: IParameter[],
    defaults: IJobDefaults,
    note: string
  ) {
    super();
    this.addClass('jp-OrchJobForm');
    const field = (label: string, input: HTMLElement, help?: string | null) =>
      h('label', { class: 'jp-OrchJobForm-field' }, h('span', { class: 'jp-OrchJobForm-label', text: label }), input, help ? h('span', { class: 'jp-OrchHint', text: help }) : null);
    const paramBox = h('fieldset', { class: 'jp-OrchJobForm-params' }, h('legend', { text: 'Parameters' }));
    if (!params.length) {
      paramBox.append(h('div', { class: 'jp-OrchHint', text: note || 'This notebook has no cell tagged "parameters"; it runs as it is.' }));
    } else if (note) {
      paramBox.append(h('div', { class: 'jp-OrchHint', text: note }));
    }
    for (const p of params) {
      const input = h('input', { class: 'jp-mod-styled', type: 'text', value: displayValue(p.default, p.type), 'data-testid': `orch-job-param-${p.name}`, name: p.name });
      this.inputs.set(p.name, input);
      paramBox.append(field(`${p.name}${p.type ? ' (' + p.type + ')' : ''}`, input, p.help));
    }
    this.gpus = h('input', { class: 'jp-mod-styled', type: 'number', min: 0, step: 1, value: String(defaults.gpus), 'data-testid': 'orch-job-gpus' });
    this.cpus = h('input', { class: 'jp-mod-styled', type: 'number', min: 0, step: 0.5, value: String(defaults.cpus), 'data-testid': 'orch-job-cpus' });
    this.memory = h('input', { class: 'jp-mod-styled', type: 'text', placeholder: 'e.g. 8Gi', value: defaults.memory, 'data-testid': 'orch-job-memory' });
    this.image = h('input', { class: 'jp-mod-styled', type: 'text', placeholder: 'container image (kubernetes provider)', value: defaults.image, 'data-testid': 'orch-job-image' });
    const res = h(
      'fieldset',
      { class: 'jp-OrchJobForm-resources' },
      h('legend', { text: 'Resources' }),
      field('GPUs', this.gpus),
      field('CPUs', this.cpus),
      field('Memory', this.memory),
      field('Image', this.image, 'empty: the worker’s own environment')
    );
    this.node.append(h('div', { class: 'jp-OrchHint', text: `Runs ${path} on a worker with papermill; the run appears in the Orchestrator sidebar.` }), paramBox, res);
  }

  /** the request, or an error naming the bad field */
  job(): INotebookJob {
    const parameters: Record<string, unknown> = {};
    for (const p of this.params) {
      parameters[p.name] = coerce(this.inputs.get(p.name)!.value, p);
    }
    const gpus = Number(this.gpus.value || 0);
    const cpus = Number(this.cpus.value || 0);
    if (!Number.isInteger(gpus) || gpus < 0) {
      throw new Error('GPUs: a whole number, 0 or more');
    }
    if (!(cpus >= 0)) {
      throw new Error('CPUs: a number, 0 or more');
    }
    const memory = this.memory.value.trim();
    if (memory && !/^\d+(\.\d+)?\s*([KMGTP]i?|[kmgtp]i?|[KMGTP]B)?$/.test(memory)) {
      throw new Error('Memory: a size such as 512Mi, 8Gi or a number of bytes');
    }
    const resources: INotebookJob['resources'] = { gpus };
    if (cpus) {
      resources.cpus = cpus;
    }
    if (memory) {
      resources.memory = memory;
    }
    return { path: this.path, parameters, resources, image: this.image.value.trim() || null };
  }
}

/** the notebook's parameters: from the server, else read from the file here */
export async function readParameters(
  api: OrchApi,
  path: string,
  readNotebook: (path: string) => Promise<{ cells?: unknown[] } | null>
): Promise<{ params: IParameter[]; note: string }> {
  try {
    return { params: await api.notebookParameters(path), note: '' };
  } catch (err) {
    if (err instanceof OrchApiError && err.status === 400) {
      return { params: [], note: err.message };
    }
    try {
      const nb = await readNotebook(path);
      return { params: parseParametersCell((nb?.cells || []) as never[]), note: '' };
    } catch {
      return { params: [], note: `The parameters could not be read: ${(err as Error).message}` };
    }
  }
}

/** Show the dialog until it is submitted (returns the new task) or cancelled (null). */
export async function runAsJob(
  api: OrchApi,
  path: string,
  defaults: IJobDefaults,
  readNotebook: (path: string) => Promise<{ cells?: unknown[] } | null>
): Promise<ITask | null> {
  const { params, note } = await readParameters(api, path, readNotebook);
  let form = new JobForm(path, params, defaults, note);
  for (;;) {
    const result = await showDialog({
      title: `Run as job: ${path.split('/').pop()}`,
      body: form,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Submit' })],
      focusNodeSelector: 'input'
    });
    if (!result.button.accept) {
      return null;
    }
    let problem = '';
    try {
      const job = form.job();
      return await api.runNotebook(job);
    } catch (err) {
      problem = (err as Error).message;
    }
    // keep what was typed, say what is wrong, ask again
    const next = new JobForm(path, params, defaults, '');
    next.node.querySelectorAll('input').forEach(input => {
      const old = form.node.querySelector(`[data-testid="${input.dataset.testid}"]`) as HTMLInputElement | null;
      if (old) {
        input.value = old.value;
      }
    });
    next.node.prepend(h('div', { class: 'jp-OrchError', role: 'alert', text: problem }));
    form = next;
  }
}

import { LabIcon } from '@jupyterlab/ui-components';

// a small DAG: three nodes and their edges, in the theme's icon colour
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="2" y="9" width="6" height="6" rx="1.2"/>
    <rect x="16" y="3" width="6" height="6" rx="1.2"/>
    <rect x="16" y="15" width="6" height="6" rx="1.2"/>
    <path d="M8 11.2h3.2V6.8H16v1.4h-3.4v3h0v1.6h0v3h3.4v1.4h-4.8v-4.4H8z"/>
  </g>
</svg>`;

export const orchIcon = new LabIcon({ name: 'jupyter-orch:icon', svgstr: svg });

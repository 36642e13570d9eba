import './base.css';
import './dashboard.css';
import './dashboard-panels.css';

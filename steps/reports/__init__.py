"""Reports: the HTML pages (test's `index.html`, evaluate's `report.html`), their charts, drawings and tables.

Built on the metrics (steps/metrics/) and the datasets' readers; no step and no metric imports a report.
"""

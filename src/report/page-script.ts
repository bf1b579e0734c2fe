/**
 * The script report.html runs (as text: it is inlined into the page, not imported). It draws each
 * chart's Vega spec with the inlined Vega runtime and wires the controls: run toggles set every
 * chart's `hiddenRuns` signal, the log-scale toggle redraws the charts that have a log variant,
 * and hovering shows a point's values in a small tooltip. The toggles' state is kept in the URL's
 * fragment (`report.html#hide=run-a,run-b&log=1`), so a view can be shared or bookmarked.
 *
 * It also records how rendering went on <body>, for the headless-browser test and for anyone
 * debugging a page: data-charts-rendered (charts drawn), data-render-errors (script errors, Vega
 * errors and failed renders; each is also listed on the page and logged to the console).
 */
import { HIDDEN_RUNS_SIGNAL } from './chart-specs.js';

export const PAGE_SCRIPT = `(function () {
  'use strict';
  var body = document.body;
  var errorCount = 0;
  function recordError(message) {
    errorCount += 1;
    body.setAttribute('data-render-errors', String(errorCount));
    var box = document.getElementById('render-errors');
    if (box) {
      box.hidden = false;
      var item = document.createElement('li');
      item.textContent = String(message);
      box.querySelector('ul').appendChild(item);
    }
  }
  // Anything that reports an error to the console (Vega does, for dataflow errors it catches) counts.
  var consoleError = console.error;
  console.error = function () {
    recordError(Array.prototype.map.call(arguments, String).join(' '));
    return consoleError.apply(console, arguments);
  };
  // Failures of our own: to the console (for whoever debugs the page), which also records them.
  function fail(message) { console.error(message); }
  window.addEventListener('error', function (e) { recordError(e.message || 'script error'); });
  window.addEventListener('unhandledrejection', function (e) {
    recordError(e.reason && e.reason.message ? e.reason.message : String(e.reason));
  });
  if (typeof vega === 'undefined') { fail('the Vega runtime did not load'); return; }

  var payload = JSON.parse(document.getElementById('report-data').textContent);
  var state = { hidden: [], log: false };
  var views = {};


  var tip = document.createElement('div');
  tip.className = 'tooltip';
  tip.hidden = true;
  body.appendChild(tip);
  function tooltip(handler, event, item, value) {
    if (value === null || value === undefined || value === '' || !event) { tip.hidden = true; return; }
    tip.textContent = '';
    if (typeof value === 'object') {
      var table = document.createElement('table');
      Object.keys(value).forEach(function (key) {
        var row = table.insertRow();
        var th = document.createElement('th');
        th.textContent = key;
        row.appendChild(th);
        row.insertCell().textContent = String(value[key]);
      });
      tip.appendChild(table);
    } else {
      tip.textContent = String(value);
    }
    tip.hidden = false;
    var x = event.clientX + 14, y = event.clientY + 14;
    var box = tip.getBoundingClientRect();
    if (x + box.width > window.innerWidth - 4) x = event.clientX - box.width - 14;
    if (y + box.height > window.innerHeight - 4) y = event.clientY - box.height - 14;
    tip.style.left = Math.max(4, x) + 'px';
    tip.style.top = Math.max(4, y) + 'px';
  }

  // Each view gets its own copies of the rows: Vega marks the objects it ingests.
  function withData(spec) {
    var copy = Object.assign({}, spec);
    copy.data = (spec.data || []).map(function (d) {
      var rows = payload.datasets[d.name];
      if (!rows || d.values || d.source || d.url) return d;
      return Object.assign({}, d, { values: rows.map(function (row) { return Object.assign({}, row); }) });
    });
    return copy;
  }

  function countRendered() {
    body.setAttribute('data-charts-rendered', String(document.querySelectorAll('.chart[data-rendered="true"]').length));
  }

  function render(chart) {
    var el = document.getElementById('chart-' + chart.id);
    if (views[chart.id]) { views[chart.id].finalize(); delete views[chart.id]; }
    el.removeAttribute('data-rendered');
    el.textContent = '';
    try {
      var useLog = Boolean(state.log && chart.log);
      el.setAttribute('data-scale', useLog ? 'log' : 'linear');
      var view = new vega.View(vega.parse(withData(useLog ? chart.log : chart.linear)), { renderer: 'svg', container: el, hover: true });
      view.tooltip(tooltip);
      view.signal(${JSON.stringify(HIDDEN_RUNS_SIGNAL)}, state.hidden.slice());
      views[chart.id] = view;
      return view.runAsync().then(function () {
        if (el.querySelector('svg')) el.setAttribute('data-rendered', 'true');
        else fail(chart.id + ': no SVG was drawn');
        countRendered();
      }, function (err) { fail(chart.id + ': ' + (err && err.message ? err.message : err)); });
    } catch (err) {
      fail(chart.id + ': ' + (err && err.message ? err.message : err));
      return Promise.resolve();
    }
  }

  var runBoxes = Array.prototype.slice.call(document.querySelectorAll('input.run-toggle'));
  var logBox = document.getElementById('log-scale');

  function readControls() {
    state.hidden = runBoxes.filter(function (box) { return !box.checked; }).map(function (box) { return box.getAttribute('data-run'); });
    state.log = Boolean(logBox && logBox.checked);
    document.querySelectorAll('[data-run-row]').forEach(function (row) {
      row.classList.toggle('run-hidden', state.hidden.indexOf(row.getAttribute('data-run-row')) >= 0);
    });
  }

  function writeHash() {
    var parts = [];
    if (state.hidden.length) parts.push('hide=' + state.hidden.map(encodeURIComponent).join(','));
    if (state.log) parts.push('log=1');
    try { history.replaceState(null, '', parts.length ? '#' + parts.join('&') : location.pathname + location.search); } catch (e) { /* some file:// contexts refuse */ }
  }

  // The fragment's state, applied to the controls before the first draw.
  location.hash.replace(/^#/, '').split('&').forEach(function (part) {
    var eq = part.indexOf('=');
    var key = eq < 0 ? part : part.slice(0, eq);
    var value = eq < 0 ? '' : part.slice(eq + 1);
    if (key === 'hide') {
      var names = value.split(',').map(function (name) { try { return decodeURIComponent(name); } catch (e) { return name; } });
      runBoxes.forEach(function (box) { if (names.indexOf(box.getAttribute('data-run')) >= 0) box.checked = false; });
    }
    if (key === 'log' && logBox) logBox.checked = value === '1';
  });
  readControls();

  function setHiddenRuns() {
    readControls();
    writeHash();
    Object.keys(views).forEach(function (id) {
      views[id].signal(${JSON.stringify(HIDDEN_RUNS_SIGNAL)}, state.hidden.slice()).runAsync().catch(function (err) { fail(id + ': ' + err.message); });
    });
  }

  runBoxes.forEach(function (box) { box.addEventListener('change', setHiddenRuns); });
  if (logBox) {
    logBox.addEventListener('change', function () {
      readControls();
      writeHash();
      payload.charts.filter(function (chart) { return chart.log; }).forEach(render);
    });
  }
  body.setAttribute('data-render-errors', String(errorCount));
  body.setAttribute('data-charts-rendered', '0');
  Promise.all(payload.charts.map(render)).then(function () { body.setAttribute('data-render-done', 'true'); });
})();
`;

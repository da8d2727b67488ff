// Collects every uncaught error and unhandled rejection of the page in `window.__jbkErrors`,
// so the browser tests fail on any of them; also logged to the console. Loaded first.
window.__jbkErrors = window.__jbkErrors || [];
window.addEventListener('error', (e) => {
  window.__jbkErrors.push('error: ' + (e.message || String(e.error)) + (e.filename ? ' at ' + e.filename + ':' + e.lineno : ''));
});
window.addEventListener('unhandledrejection', (e) => {
  const r = e.reason;
  window.__jbkErrors.push('unhandledrejection: ' + (r && r.stack ? r.stack : String(r)));
});

// The one import of Vue for every page: the runtime-only production build, vendored (no
// template compiler, so no eval; templates are `html` tagged templates from ./html.js).
export * from '../vendor/vue-3.5.46/vue.runtime.esm-browser.prod.js';

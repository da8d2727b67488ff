// Templates without a compiler: htm parses tagged template literals once (cached per call
// site) into calls of Vue's `h`, so pages read like markup and the CSP needs no unsafe-eval.
//   html`<button onClick=${go} disabled=${busy}>${t('send')}</button>`
// Components: html`<${Avatar} user=${u} />`. Attributes are Vue props (`class`, `onInput`...).
import htm from '../vendor/htm-3.1.1/htm.module.js';
import { h } from './vue.js';

export const html = htm.bind(h);

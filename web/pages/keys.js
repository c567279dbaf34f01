// API keys. Not built yet: the page says so rather than pretending.

import { h } from '{{asset lib/dom.js}}';

export const page = {
  id: 'keys',
  title: 'API keys',
  nav: 'API keys',
  visible: (ctx) => ctx.level !== 'user',
  render: async (main) => {
    main.replaceChildren(h('h1', { text: 'API keys', tabIndex: -1 }), h('p', { class: 'empty', text: 'This page is not built yet.' }));
  },
};

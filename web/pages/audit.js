// Audit log. Not built yet: the page says so rather than pretending.

import { h } from '{{asset lib/dom.js}}';

export const page = {
  id: 'audit',
  title: 'Audit log',
  nav: 'Audit',
  visible: (ctx) => ctx.level !== 'user',
  render: async (main) => {
    main.replaceChildren(h('h1', { text: 'Audit log', tabIndex: -1 }), h('p', { class: 'empty', text: 'This page is not built yet.' }));
  },
};

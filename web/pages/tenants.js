// Tenants. Not built yet: the page says so rather than pretending.

import { h } from '{{asset lib/dom.js}}';

export const page = {
  id: 'tenants',
  title: 'Tenants',
  nav: 'Tenants',
  visible: (ctx) => ctx.level !== 'user',
  render: async (main) => {
    main.replaceChildren(h('h1', { text: 'Tenants', tabIndex: -1 }), h('p', { class: 'empty', text: 'This page is not built yet.' }));
  },
};

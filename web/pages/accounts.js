// Accounts. Not built yet: the page says so rather than pretending.

import { h } from '{{asset lib/dom.js}}';

export const page = {
  id: 'accounts',
  title: 'Accounts',
  nav: 'Accounts',
  visible: (ctx) => ctx.level !== 'user',
  render: async (main) => {
    main.replaceChildren(h('h1', { text: 'Accounts', tabIndex: -1 }), h('p', { class: 'empty', text: 'This page is not built yet.' }));
  },
};

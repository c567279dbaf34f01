// Server-to-server tokens. Not built yet: the page says so rather than pretending.

import { h } from '{{asset lib/dom.js}}';

export const page = {
  id: 's2s',
  title: 'Server-to-server tokens',
  nav: 'S2S tokens',
  visible: (ctx) => ctx.level !== 'user',
  render: async (main) => {
    main.replaceChildren(h('h1', { text: 'Server-to-server tokens', tabIndex: -1 }), h('p', { class: 'empty', text: 'This page is not built yet.' }));
  },
};

// Every page of the app: the route name (the first part of `#/name/id`), its component, and
// whether it needs a session. Adding a page: write pages/<name>.js exporting a component,
// import it here and add a row.
import Login from './pages/login.js';
import Consent from './pages/consent.js';
import Chats from './pages/chats.js';
import Chat from './pages/chat.js';
import NewChat from './pages/new-chat.js';
import Match from './pages/match.js';
import Shop from './pages/shop.js';
import Product from './pages/product.js';
import Animal from './pages/animal.js';
import Orders from './pages/orders.js';
import Order from './pages/order.js';
import Claim from './pages/claim.js';
import Me from './pages/me.js';
import User from './pages/user.js';

export const routes = {
  login: { component: Login, public: true },
  consent: { component: Consent },
  chats: { component: Chats, tab: 'chats' },
  chat: { component: Chat, tab: 'chats', bare: true },
  'new-chat': { component: NewChat, tab: 'chats' },
  match: { component: Match, tab: 'match' },
  shop: { component: Shop, tab: 'shop' },
  product: { component: Product, tab: 'shop' },
  animal: { component: Animal, tab: 'shop' },
  orders: { component: Orders, tab: 'me' },
  order: { component: Order, tab: 'me' },
  claim: { component: Claim, tab: 'me' },
  me: { component: Me, tab: 'me' },
  user: { component: User, tab: 'chats' },
};

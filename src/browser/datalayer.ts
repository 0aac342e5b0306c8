// Opt-in GA4 → Klaviyo bridge: reads `window.dataLayer` (earlier pushes included) and wraps its push. Both GTM
// objects (`{event, ecommerce}`) and gtag() argument lists (`['event', name, params]`) are understood.
// Property names follow Klaviyo's integration guide for custom storefronts (Viewed Product, Added to Cart,
// Started Checkout, Placed Order), so Klaviyo's flows and product blocks recognise them.
import type { TrackOptions } from './types.js';

type Obj = Record<string, any>;
export type Mapped = [name: string, properties: Obj, options: TrackOptions];

const unique = <T>(xs: T[]) => [...new Set(xs.filter(Boolean))];

/** One GA4 item as a Klaviyo `Items` entry. */
export function klaviyoItem(i: Obj): Obj {
  const quantity = +i.quantity || 1;
  return {
    ProductID: i.item_id,
    SKU: i.item_sku || i.item_id,
    ProductName: i.item_name,
    Quantity: quantity,
    ItemPrice: i.price,
    RowTotal: i.price * quantity,
    ProductURL: i.item_url || i.url,
    ImageURL: i.image_url || i.item_image,
    ProductCategories: unique(['', 2, 3, 4, 5].map((n) => i['item_category' + n])),
  };
}

/** Maps one GA4 ecommerce event to a Klaviyo track call, or undefined for events we leave alone. */
export function mapGa4(event: string, ecommerce: Obj | undefined, href: string, now = Date.now()): Mapped | undefined {
  const ec = ecommerce || {};
  const raw: Obj[] = ec.items || [];
  const items = raw.map(klaviyoItem);
  const $value = ec.value ?? items.reduce((sum, i) => sum + (i.RowTotal || 0), 0);
  const options: TrackOptions = { value: $value, valueCurrency: ec.currency };
  const f = items[0] || {};
  // The first item as Viewed Product names it; Added to Cart prefixes the same fields with `AddedItem`.
  const product: Obj = { ProductName: f.ProductName, ProductID: f.ProductID, SKU: f.SKU, Categories: f.ProductCategories, ImageURL: f.ImageURL, URL: f.ProductURL, Price: f.ItemPrice };
  const cart = { $value, ItemNames: items.map((i) => i.ProductName), Items: items };
  const Categories = unique(items.flatMap((i) => i.ProductCategories));
  if (event == 'view_item') return ['Viewed Product', { ...product, URL: f.ProductURL || href, Brand: raw[0]?.item_brand }, options];
  if (event == 'add_to_cart') {
    product.Quantity = f.Quantity;
    for (const k in product) (cart as Obj)['AddedItem' + k] = product[k];
    return ['Added to Cart', { ...cart, CheckoutURL: ec.checkout_url }, options];
  }
  if (event == 'begin_checkout')
    return ['Started Checkout', { ...cart, $event_id: String(ec.checkout_id || ec.cart_id || now), CheckoutURL: ec.checkout_url || href, Categories }, options];
  if (event == 'purchase')
    return ['Placed Order', {
      ...cart, OrderId: ec.transaction_id, Categories, Brands: unique(raw.map((i) => i.item_brand)), DiscountCode: ec.coupon, DiscountValue: ec.discount,
    }, { ...options, uniqueId: ec.transaction_id && String(ec.transaction_id) }];
}

export function bridgeDataLayer(win: Window & { dataLayer?: unknown[] }, track: (...call: Mapped) => void) {
  const layer = (win.dataLayer = win.dataLayer || []);
  // GTM `{event, ecommerce}` or gtag `['event', name, params]` (an Arguments object).
  const handle = (e: any) => {
    const mapped: Mapped | undefined = e && (e[0] == 'event' ? mapGa4(e[1], e[2], location.href) : mapGa4(e.event, e.ecommerce, location.href));
    if (mapped) track(...mapped);
  };
  layer.forEach(handle);
  const push = layer.push;
  layer.push = function (...entries: unknown[]) {
    const n = push.apply(this, entries);
    entries.forEach(handle);
    return n;
  };
}

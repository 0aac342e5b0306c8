// Opt-in GA4 → Klaviyo bridge: reads `window.dataLayer` (earlier pushes included) and wraps its push. Both GTM
// objects (`{event, ecommerce}`) and gtag() argument lists (`['event', name, params]`) are understood.
// Property names follow Klaviyo's integration guide (SPEC §2 pinned detail 8).
import type { TrackOptions } from './types.js';

type Obj = Record<string, any>;
export type Mapped = [name: string, properties: Obj, options: TrackOptions];

const categories = (i: Obj) => [1, 2, 3, 4, 5].map((n) => i['item_category' + (n > 1 ? n : '')]).filter(Boolean);
const unique = <T>(xs: T[]) => [...new Set(xs)];

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
    ProductCategories: categories(i),
  };
}

/** Maps one GA4 ecommerce event to a Klaviyo track call, or undefined for events we leave alone. */
export function mapGa4(event: string, ecommerce: Obj | undefined, href: string, now = Date.now()): Mapped | undefined {
  const ec = ecommerce || {};
  const items: Obj[] = (ec.items || []).map(klaviyoItem);
  const value = ec.value ?? items.reduce((sum, i) => sum + (i.RowTotal || 0), 0);
  const options: TrackOptions = { value, valueCurrency: ec.currency };
  const names = items.map((i) => i.ProductName);
  const cats = unique(items.flatMap((i) => i.ProductCategories));
  const first = items[0] || {};
  if (event == 'view_item')
    return ['Viewed Product', {
      ProductName: first.ProductName, ProductID: first.ProductID, SKU: first.SKU, Categories: first.ProductCategories,
      ImageURL: first.ImageURL, URL: first.ProductURL || href, Brand: ec.items?.[0]?.item_brand, Price: first.ItemPrice,
    }, options];
  if (event == 'add_to_cart')
    return ['Added to Cart', {
      $value: value, AddedItemProductName: first.ProductName, AddedItemProductID: first.ProductID, AddedItemSKU: first.SKU,
      AddedItemCategories: first.ProductCategories, AddedItemImageURL: first.ImageURL, AddedItemURL: first.ProductURL,
      AddedItemPrice: first.ItemPrice, AddedItemQuantity: first.Quantity, ItemNames: names, CheckoutURL: ec.checkout_url,
      Items: items,
    }, options];
  if (event == 'begin_checkout')
    return ['Started Checkout', {
      $event_id: String(ec.checkout_id || ec.cart_id || now), $value: value, ItemNames: names,
      CheckoutURL: ec.checkout_url || href, Categories: cats, Items: items,
    }, options];
  if (event == 'purchase')
    return ['Placed Order', {
      $value: value, OrderId: ec.transaction_id, Categories: cats, ItemNames: names,
      Brands: unique((ec.items || []).map((i: Obj) => i.item_brand).filter(Boolean)), DiscountCode: ec.coupon,
      DiscountValue: ec.discount, Items: items,
    }, { ...options, uniqueId: ec.transaction_id && String(ec.transaction_id) }];
}

/** GTM `{event, ecommerce}` or gtag `['event', name, params]` (an Arguments object) → [event, ecommerce]. */
function read(entry: any): [string, Obj | undefined] | undefined {
  if (entry && entry[0] == 'event' && typeof entry[1] == 'string') return [entry[1], entry[2]];
  if (entry && typeof entry.event == 'string') return [entry.event, entry.ecommerce];
}

export function bridgeDataLayer(win: Window & { dataLayer?: unknown[] }, track: (...call: Mapped) => void) {
  const layer = (win.dataLayer = win.dataLayer || []);
  const handle = (entry: unknown) => {
    const found = read(entry);
    const mapped = found && mapGa4(found[0], found[1], win.location.href);
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

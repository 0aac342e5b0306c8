// @vitest-environment happy-dom
import { describe, it, expect, beforeEach } from 'vitest';
import { bridgeDataLayer, mapGa4 } from '../../src/browser/datalayer.js';

const items = [
  { item_id: 'SKU-1', item_name: 'Hat', item_brand: 'Acme', item_category: 'Apparel', item_category2: 'Hats', price: 19.5, quantity: 2, item_url: 'https://shop.example/hat', image_url: 'https://cdn.example/hat.jpg' },
  { item_id: 'SKU-2', item_name: 'Scarf', item_brand: 'Knit Co', item_category: 'Apparel', price: 10 },
];
const hatItem = {
  ProductID: 'SKU-1', SKU: 'SKU-1', ProductName: 'Hat', Quantity: 2, ItemPrice: 19.5, RowTotal: 39,
  ProductURL: 'https://shop.example/hat', ImageURL: 'https://cdn.example/hat.jpg', ProductCategories: ['Apparel', 'Hats'],
};
const href = 'https://shop.example/checkout';

describe('GA4 → Klaviyo mapping', () => {
  it('view_item → Viewed Product with the standard properties', () => {
    const [name, p, o] = mapGa4('view_item', { currency: 'USD', value: 19.5, items: [items[0]] }, href)!;
    expect(name).toBe('Viewed Product');
    expect(p).toEqual({
      ProductName: 'Hat', ProductID: 'SKU-1', SKU: 'SKU-1', Categories: ['Apparel', 'Hats'], ImageURL: 'https://cdn.example/hat.jpg',
      URL: 'https://shop.example/hat', Brand: 'Acme', Price: 19.5,
    });
    expect(o).toMatchObject({ value: 19.5, valueCurrency: 'USD' });
  });
  it('add_to_cart → Added to Cart with AddedItem* fields and Items', () => {
    const [name, p] = mapGa4('add_to_cart', { currency: 'USD', value: 39, items: [items[0]] }, href)!;
    expect(name).toBe('Added to Cart');
    expect(p).toMatchObject({
      $value: 39, AddedItemProductName: 'Hat', AddedItemProductID: 'SKU-1', AddedItemSKU: 'SKU-1', AddedItemCategories: ['Apparel', 'Hats'],
      AddedItemImageURL: 'https://cdn.example/hat.jpg', AddedItemURL: 'https://shop.example/hat', AddedItemPrice: 19.5, AddedItemQuantity: 2,
      ItemNames: ['Hat'], Items: [hatItem],
    });
  });
  it('begin_checkout → Started Checkout; value computed from items when GA4 omits it', () => {
    const [name, p] = mapGa4('begin_checkout', { items }, href, 1700000000000)!;
    expect(name).toBe('Started Checkout');
    expect(p).toMatchObject({ $event_id: '1700000000000', $value: 49, ItemNames: ['Hat', 'Scarf'], CheckoutURL: href, Categories: ['Apparel', 'Hats'] });
    expect(p.Items).toHaveLength(2);
  });
  it('purchase → Placed Order: value = purchase value ($value too), unique_id = transaction_id', () => {
    const [name, p, o] = mapGa4('purchase', { transaction_id: 'T-1001', value: 45, currency: 'EUR', coupon: 'TEN', discount: 4, items }, href)!;
    expect(name).toBe('Placed Order');
    expect(o).toEqual({ value: 45, valueCurrency: 'EUR', uniqueId: 'T-1001' });
    expect(p).toMatchObject({ $value: 45, OrderId: 'T-1001', Categories: ['Apparel', 'Hats'], ItemNames: ['Hat', 'Scarf'], Brands: ['Acme', 'Knit Co'], DiscountCode: 'TEN', DiscountValue: 4 });
  });
  it('other GA4 events are left alone', () => {
    expect(mapGa4('page_view', {}, href)).toBeUndefined();
    expect(mapGa4('gtm.js', undefined, href)).toBeUndefined();
  });
});

describe('dataLayer bridge', () => {
  beforeEach(() => delete (window as any).dataLayer);
  it('reads pushes made before it loaded, then wraps push (GTM objects and gtag arguments)', () => {
    const calls: string[] = [];
    (window as any).dataLayer = [{ event: 'gtm.js' }, { event: 'view_item', ecommerce: { items: [items[0]] } }];
    bridgeDataLayer(window as any, (name) => calls.push(name));
    expect(calls).toEqual(['Viewed Product']);
    const layer = (window as any).dataLayer;
    expect(layer.push({ event: 'add_to_cart', ecommerce: { items: [items[0]] } })).toBe(3);
    (function gtag(..._: unknown[]) { layer.push(arguments); })('event', 'purchase', { transaction_id: 'T-9', value: 5, items });
    expect(calls).toEqual(['Viewed Product', 'Added to Cart', 'Placed Order']);
    expect(layer).toHaveLength(4);
  });
  it('creates window.dataLayer when the page has none', () => {
    bridgeDataLayer(window as any, () => {});
    expect(Array.isArray((window as any).dataLayer)).toBe(true);
  });
});

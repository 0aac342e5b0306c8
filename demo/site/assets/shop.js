// The demo store's own code: a tiny catalog, a cart in localStorage, and the klaviyoRelay calls a storefront
// engineer would write (Klaviyo's standard event and property names).
(function () {
  var PRODUCTS = [
    { id: 'TR-2', sku: 'TR-2-42', name: 'Trail Runner 2', brand: 'Northwind', price: 129, categories: ['Shoes', 'Running'], color: '#2f6f5e', blurb: 'A grippy, light trail shoe with a rock plate and a roomy toe box.' },
    { id: 'CS-1', sku: 'CS-1-41', name: 'City Sneaker', brand: 'Northwind', price: 89, categories: ['Shoes', 'Lifestyle'], color: '#b5523b', blurb: 'Suede and recycled rubber, for pavement miles and long lunches.' },
    { id: 'MB-3', sku: 'MB-3-OS', name: 'Merino Beanie', brand: 'Fjell', price: 29, categories: ['Accessories'], color: '#5b5f97', blurb: 'Fine merino, warm without the itch. One size.' },
    { id: 'CT-7', sku: 'CT-7-OS', name: 'Canvas Tote', brand: 'Fjell', price: 45, categories: ['Bags'], color: '#c7953c', blurb: 'Waxed canvas with leather handles; fits a laptop and a baguette.' },
  ];
  var CART_KEY = 'demo-cart';

  function find(id) {
    return PRODUCTS.filter(function (p) { return p.id == id; })[0];
  }
  function productUrl(p) {
    return location.origin + '/product?id=' + encodeURIComponent(p.id);
  }
  function imageUrl(p) {
    return location.origin + '/img/' + p.id + '.svg';
  }
  function cart() {
    try { return JSON.parse(localStorage.getItem(CART_KEY)) || []; } catch (e) { return []; }
  }
  function saveCart(lines) {
    localStorage.setItem(CART_KEY, JSON.stringify(lines));
    updateCartCount();
  }
  function cartTotal(lines) {
    return lines.reduce(function (sum, l) { return sum + find(l.id).price * l.qty; }, 0);
  }
  /** One Klaviyo `Items` entry. */
  function item(line) {
    var p = find(line.id);
    return { ProductID: p.id, SKU: p.sku, ProductName: p.name, Quantity: line.qty, ItemPrice: p.price, RowTotal: p.price * line.qty,
      ProductURL: productUrl(p), ImageURL: imageUrl(p), ProductCategories: p.categories };
  }
  function money(n) {
    return '$' + n.toFixed(2);
  }
  function updateCartCount() {
    var n = cart().reduce(function (s, l) { return s + l.qty; }, 0);
    document.querySelectorAll('[data-cart-count]').forEach(function (el) { el.textContent = n; });
  }

  function viewedProduct(p) {
    klaviyoRelay.track('Viewed Product', {
      ProductName: p.name, ProductID: p.id, SKU: p.sku, Categories: p.categories, ImageURL: imageUrl(p),
      URL: productUrl(p), Brand: p.brand, Price: p.price,
    }, { value: p.price, valueCurrency: 'USD' });
  }

  function addToCart(p, qty) {
    var lines = cart();
    var line = lines.filter(function (l) { return l.id == p.id; })[0];
    if (line) line.qty += qty; else lines.push({ id: p.id, qty: qty });
    saveCart(lines);
    var total = cartTotal(lines);
    klaviyoRelay.track('Added to Cart', {
      $value: total, AddedItemProductName: p.name, AddedItemProductID: p.id, AddedItemSKU: p.sku,
      AddedItemCategories: p.categories, AddedItemImageURL: imageUrl(p), AddedItemURL: productUrl(p),
      AddedItemPrice: p.price, AddedItemQuantity: qty, ItemNames: lines.map(function (l) { return find(l.id).name; }),
      CheckoutURL: location.origin + '/checkout', Items: lines.map(item),
    }, { value: total, valueCurrency: 'USD' });
  }

  function categoriesOf(lines) {
    var all = [];
    lines.forEach(function (l) { find(l.id).categories.forEach(function (c) { if (all.indexOf(c) < 0) all.push(c); }); });
    return all;
  }

  function startedCheckout(lines, checkoutId) {
    var total = cartTotal(lines);
    klaviyoRelay.track('Started Checkout', {
      $event_id: checkoutId, $value: total, ItemNames: lines.map(function (l) { return find(l.id).name; }),
      CheckoutURL: location.origin + '/checkout', Categories: categoriesOf(lines), Items: lines.map(item),
    }, { value: total, valueCurrency: 'USD' });
  }

  function placedOrder(lines, orderId, discountCode) {
    var subtotal = cartTotal(lines);
    var discount = discountCode ? Math.round(subtotal * 0.1 * 100) / 100 : 0;
    var total = subtotal - discount;
    klaviyoRelay.track('Placed Order', {
      OrderId: orderId, $value: total, Categories: categoriesOf(lines), ItemNames: lines.map(function (l) { return find(l.id).name; }),
      Brands: lines.map(function (l) { return find(l.id).brand; }).filter(function (b, i, a) { return a.indexOf(b) == i; }),
      DiscountCode: discountCode || undefined, DiscountValue: discount, Items: lines.map(item),
    }, { value: total, valueCurrency: 'USD', uniqueId: orderId });
    return total;
  }

  function productTile(p) {
    return '<div class="tile" style="--tile:' + p.color + '"><span>' + p.name.split(' ').map(function (w) { return w[0]; }).join('') + '</span></div>';
  }

  function wireNewsletter() {
    document.querySelectorAll('[data-newsletter]').forEach(function (form) {
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        var email = form.email.value.trim();
        var first = form.first_name.value.trim();
        var traits = { email: email };
        if (first) traits.first_name = first;
        klaviyoRelay.identify(traits);
        klaviyoRelay.track('Subscribed to Newsletter', { Source: 'footer form', Page: location.pathname });
        var done = form.querySelector('[data-newsletter-done]');
        done.hidden = false;
        done.textContent = 'Thanks' + (first ? ', ' + first : '') + '! ' + email + ' is now identified: every later event carries it.';
        form.reset();
      });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    updateCartCount();
    wireNewsletter();
  });

  window.shop = {
    PRODUCTS: PRODUCTS, find: find, cart: cart, saveCart: saveCart, cartTotal: cartTotal, money: money, productTile: productTile,
    viewedProduct: viewedProduct, addToCart: addToCart, startedCheckout: startedCheckout, placedOrder: placedOrder,
  };
})();

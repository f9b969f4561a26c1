/*! Baton checkout component: embeds Baton's hosted checkout in an iframe.
 *
 *   <script src="https://payments.example.com/checkout.js"></script>
 *   <div id="pay"></div>
 *   <script>
 *     const checkout = Baton.mount(document.getElementById('pay'), {
 *       token: checkoutToken,              // from POST /v1/whitelabel-customer/grants
 *       language: 'de-DE',                 // or 'en-GB' (the default)
 *       onSuccess(outcome) {},             // imburse_payment_succeeded
 *       onFailure(outcome) {},             // a declined payment (the customer may try again),
 *                                          // an invalid token or a platform error
 *       onCancel(outcome) {},              // imburse_payment_cancelled
 *     });
 *     // later: checkout.unmount();
 *   </script>
 *
 * Each callback receives {messageType, bearerToken, providerName, messageDescription}.
 * The iframe follows the height of its content. Messages are accepted only from the
 * mounted iframe's own window at the checkout's origin; anything else is ignored.
 * The embedding page's origin must be listed in the tenant's `allowedOrigins`.
 */
(function () {
  'use strict';

  var SOURCE = 'baton-checkout';
  // Where this script was loaded from: the default Baton to embed.
  var script = document.currentScript;
  var defaultBase = script && script.src ? new URL('.', script.src).href : null;

  function text(value) {
    return typeof value === 'string' ? value : undefined;
  }

  // `imburse:payment_failed` is an older spelling of `imburse_payment_failed`.
  function normalise(messageType) {
    return (text(messageType) || '').replace(/^imburse:/, 'imburse_');
  }

  function mount(element, options) {
    if (typeof element === 'string') element = document.querySelector(element);
    if (!element || typeof element.appendChild !== 'function') {
      throw new TypeError('Baton.mount: the first argument must be an element (or a selector for one)');
    }
    options = options || {};
    if (!options.token) throw new TypeError('Baton.mount: options.token (a checkout token) is required');
    var base = options.baseUrl || defaultBase;
    if (!base) throw new TypeError('Baton.mount: options.baseUrl is required when checkout.js is not loaded from Baton');
    base = new URL(base, location.href);
    if (!/\/$/.test(base.pathname)) base.pathname += '/';

    var src = new URL('checkout', base);
    src.searchParams.set('bearerToken', options.token);
    if (options.language) src.searchParams.set('language', options.language);
    src.searchParams.set('parentOrigin', location.origin);
    var origin = src.origin;

    var iframe = document.createElement('iframe');
    iframe.src = src.href;
    iframe.title = options.title || 'Secure payment';
    iframe.setAttribute('allow', 'payment');
    iframe.style.display = 'block';
    iframe.style.width = '100%';
    iframe.style.border = '0';
    iframe.style.height = (options.initialHeight || 480) + 'px';

    function call(name, outcome) {
      if (typeof options[name] === 'function') options[name](outcome);
    }

    function onMessage(event) {
      // Only the iframe mounted here, at the checkout's origin, may talk to us.
      if (event.origin !== origin || event.source !== iframe.contentWindow) return;
      var data = event.data;
      if (!data || typeof data !== 'object' || data.source !== SOURCE) return;
      if (data.type === 'resize') {
        var height = Number(data.height);
        if (isFinite(height) && height > 0) iframe.style.height = Math.ceil(Math.min(height, 20000)) + 'px';
      } else if (data.type === 'outcome') {
        var outcome = {
          messageType: normalise(data.messageType),
          bearerToken: text(data.bearerToken),
          providerName: text(data.providerName),
          messageDescription: text(data.messageDescription),
        };
        if (outcome.messageType === 'imburse_payment_succeeded') call('onSuccess', outcome);
        else if (outcome.messageType === 'imburse_payment_cancelled') call('onCancel', outcome);
        else call('onFailure', outcome);
      }
    }

    window.addEventListener('message', onMessage);
    element.appendChild(iframe);

    var mounted = true;
    return {
      iframe: iframe,
      unmount: function () {
        if (!mounted) return;
        mounted = false;
        window.removeEventListener('message', onMessage);
        if (iframe.parentNode) iframe.parentNode.removeChild(iframe);
      },
    };
  }

  window.Baton = { mount: mount };
})();

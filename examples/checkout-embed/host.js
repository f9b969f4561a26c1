// The merchant's page: loads Baton's checkout component from the Baton it is given
// and mounts it with a checkout token. Settings come from the query string:
//   ?baton=http://127.0.0.1:8080   where Baton runs (the default)
//   &token=…                       a checkout token (otherwise a form asks for one)
//   &language=de-DE                the checkout's language (en-GB by default)
// On a real site the script tag is static:
//   <script src="https://payments.example.com/checkout.js"></script>
'use strict';

const params = new URLSearchParams(location.search);
const baton = (params.get('baton') || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const token = params.get('token');
const status = document.getElementById('status');
const events = document.getElementById('events');

function report(callback, outcome) {
  const item = document.createElement('li');
  item.dataset.callback = callback;
  item.dataset.messageType = outcome.messageType;
  item.textContent = `${callback}: ${outcome.messageType}`;
  if (outcome.messageDescription) item.textContent += ` (${outcome.messageDescription})`;
  events.append(item);
}

if (!token) {
  document.getElementById('baton-input').value = baton;
  document.getElementById('token-form').hidden = false;
} else {
  const script = document.createElement('script');
  script.src = `${baton}/checkout.js`;
  script.onerror = () => {
    status.textContent = `Could not load ${script.src}. Is Baton running there?`;
  };
  script.onload = () => {
    window.checkout = Baton.mount(document.getElementById('checkout'), {
      token,
      language: params.get('language') || 'en-GB',
      onSuccess(outcome) {
        report('onSuccess', outcome);
        status.textContent = 'Thank you: your payment was received.';
      },
      onFailure(outcome) {
        report('onFailure', outcome);
        status.textContent =
          outcome.messageType === 'imburse_payment_failed'
            ? 'The payment did not go through. You can try another card.'
            : 'This payment page can no longer be used. Please ask us for a new link.';
      },
      onCancel(outcome) {
        report('onCancel', outcome);
        status.textContent = 'You cancelled the payment.';
      },
    });
  };
  document.head.append(script);
}

(function () {
  var form = document.getElementById("passkey-autofill");
  var P = window.PublicKeyCredential;
  if (!form || !P || !P.isConditionalMediationAvailable || !P.parseRequestOptionsFromJSON) {
    return;
  }
  P.isConditionalMediationAvailable().then(function (available) {
    if (!available) {
      return;
    }
    var body = new URLSearchParams();
    body.set("csrf", form.elements.csrf.value);
    body.set("tx", form.elements.tx.value);
    body.set("purpose", "autofill");
    return fetch("/login/passkey/begin", {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (r) {
      if (!r.ok) {
        throw new Error("begin " + r.status);
      }
      return r.json();
    }).then(function (begun) {
      form.elements.ceremony.value = begun.ceremony;
      return navigator.credentials.get({
        mediation: "conditional",
        publicKey: P.parseRequestOptionsFromJSON(begun.options)
      });
    }).then(function (credential) {
      if (credential) {
        form.elements.credential.value = JSON.stringify(credential.toJSON());
        form.submit();
      }
    });
  }).catch(function () {
    // Autofill is a convenience: the form and the passkey button still work.
  });
})();

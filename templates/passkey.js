(function () {
  var form = document.getElementById("passkey-form");
  var button = document.getElementById("passkey-start");
  var status = document.getElementById("passkey-status");
  var options = JSON.parse(document.getElementById("passkey-options").textContent);
  var creating = form.getAttribute("data-mode") === "create";
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    status.textContent = form.getAttribute("data-unsupported");
    button.disabled = true;
    return;
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    status.textContent = "";
    var call = creating
      ? navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
      : navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
    call.then(function (credential) {
      form.elements.credential.value = JSON.stringify(credential.toJSON());
      form.submit();
    }).catch(function (e) {
      status.textContent = form.getAttribute("data-not-used").replace("{error}", e.name);
      button.disabled = false;
    });
  });
})();

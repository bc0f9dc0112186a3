(function () {
  var form = document.getElementById("passkey-form");
  var button = document.getElementById("passkey-start");
  var status = document.getElementById("passkey-status");
  var options = JSON.parse(document.getElementById("passkey-options").textContent);
  var creating = form.getAttribute("data-mode") === "create";
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    status.textContent = "This browser cannot use passkeys here.";
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
      status.textContent = "The passkey was not used (" + e.name + "). You can try again.";
      button.disabled = false;
    });
  });
})();

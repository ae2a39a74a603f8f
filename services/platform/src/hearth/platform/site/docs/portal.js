// The docs portal: one Swagger UI over every service's OpenAPI (specs.json, written from the
// front door's route table). persistAuthorization keeps what Authorize was given in the
// browser's storage, and every service names its bearer scheme the same, so one Authorize
// serves every service's page.
(async function () {
  const select = document.getElementById("service");
  const specs = await (await fetch("specs.json")).json();
  const wanted = new URLSearchParams(location.search).get("service");
  for (const spec of specs) {
    const option = document.createElement("option");
    option.value = spec.name;
    option.textContent = spec.name;
    option.dataset.url = spec.url;
    select.appendChild(option);
  }
  if (wanted && specs.some((spec) => spec.name === wanted)) select.value = wanted;
  function show() {
    const chosen = select.selectedOptions[0];
    document.getElementById("redoc").href = "redoc.html?service=" + chosen.value;
    window.ui = SwaggerUIBundle({
      url: chosen.dataset.url,
      dom_id: "#swagger-ui",
      persistAuthorization: true,
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
    });
  }
  select.addEventListener("change", () => {
    history.replaceState(null, "", "?service=" + select.value);
    show();
  });
  show();
})();

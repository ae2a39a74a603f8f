// The docs portal: one Swagger UI over every service's OpenAPI (specs.json, written from the
// front door's route table). Authorize once: the token given to any bearer or OAuth2 scheme
// (auth's password flow included) is kept for this browser tab and handed to every scheme of
// every service's page, so a token is never copied across pages or ports.
(async function () {
  const KEY = "hearth-docs-token";
  const select = document.getElementById("service");
  await hearthMenu(select, "specs.json");

  // Keeps the token of any Authorize (and forgets it on Logout).
  const KeepToken = () => ({
    statePlugins: {
      auth: {
        wrapActions: {
          authorize: (original) => (payload) => {
            for (const entry of Object.values(payload || {})) {
              if (entry && typeof entry.value === "string" && entry.value) {
                sessionStorage.setItem(KEY, entry.value);
              }
            }
            return original(payload);
          },
          authorizeOauth2: (original) => (payload) => {
            const token = payload && payload.token && payload.token.access_token;
            if (token) sessionStorage.setItem(KEY, token);
            return original(payload);
          },
          logout: (original) => (payload) => {
            sessionStorage.removeItem(KEY);
            return original(payload);
          },
        },
      },
    },
  });

  // Gives the kept token to every scheme of the page just loaded.
  function authorizeAll(ui) {
    const token = sessionStorage.getItem(KEY);
    const schemes = ui.specSelectors.specJson().getIn(["components", "securitySchemes"]);
    if (!token || !schemes) return;
    schemes.forEach((scheme, name) => {
      const type = scheme.get("type");
      if (type === "http" && (scheme.get("scheme") || "").toLowerCase() === "bearer") {
        ui.preauthorizeApiKey(name, token);
      } else if (type === "oauth2") {
        ui.authActions.authorizeOauth2({
          auth: { name, schema: scheme.toJS() },
          token: { access_token: token, token_type: "Bearer" },
        });
      }
    });
  }

  function show() {
    const chosen = select.selectedOptions[0];
    document.getElementById("redoc").href = "redoc.html?service=" + chosen.value;
    window.ui = SwaggerUIBundle({
      url: chosen.dataset.url,
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
      plugins: [KeepToken],
      onComplete: () => authorizeAll(window.ui),
    });
  }
  select.addEventListener("change", () => {
    history.replaceState(null, "", "?service=" + select.value);
    show();
  });
  show();
})();

// Swagger UI's start-up, a file of its own because the CSP admits no inline script.
// validatorUrl null: the default would send the document to validator.swagger.io.
window.ui = window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  persistAuthorization: false,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});

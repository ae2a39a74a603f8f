// Renders an AsyncAPI 3.0 document (the Socket.IO events of a service, events.json lists
// them) as plain HTML: each operation with its direction, payload schema, example and ack.
// No renderer from a CDN or npm; text is only ever set as text (never parsed as HTML).
(async function () {
  const select = document.getElementById("service");
  const out = document.getElementById("doc");
  await hearthMenu(select, "events.json");

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }
  function resolve(doc, ref) {
    return ref.slice(2).split("/").reduce((node, part) => node[part], doc);
  }
  function deref(doc, node) {
    while (node && node.$ref) node = resolve(doc, node.$ref);
    return node;
  }
  function json(value) {
    return el("pre", JSON.stringify(value, null, 2));
  }
  function message(doc, ref, parent, heading) {
    const msg = deref(doc, { $ref: ref });
    parent.appendChild(el("h3", heading));
    if (msg.description) parent.appendChild(el("p", msg.description));
    parent.appendChild(el("div", "Payload schema:"));
    parent.appendChild(json(msg.payload));
    for (const example of msg.examples || []) {
      parent.appendChild(el("div", "Example:"));
      parent.appendChild(json(example.payload));
    }
  }

  async function show() {
    const chosen = select.selectedOptions[0];
    document.getElementById("raw").href = chosen.dataset.url;
    const doc = await (await fetch(chosen.dataset.url)).json();
    out.replaceChildren();
    out.appendChild(el("h1", `${doc.info.title} ${doc.info.version}`));
    out.appendChild(el("p", doc.info.description));
    for (const [name, server] of Object.entries(doc.servers || {})) {
      out.appendChild(el("p", `Server ${name}: ${server.protocol}://${server.host}${server.pathname || ""}. ${server.description || ""}`));
    }
    for (const [name, op] of Object.entries(doc.operations)) {
      const section = el("section", null, "event");
      section.id = "event-" + name;
      const first = deref(doc, op.messages[0]);
      const title = el("h2", first.name);
      const receive = op.action === "receive";
      title.appendChild(el("span", receive ? "client \u2192 server" : "server \u2192 client", "direction " + op.action));
      section.appendChild(title);
      section.appendChild(el("p", op.summary));
      message(doc, op.messages[0].$ref, section, receive ? "The client emits" : "The server emits");
      if (op.reply) message(doc, op.reply.messages[0].$ref, section, "Its ack");
      out.appendChild(section);
    }
    const schemas = (doc.components || {}).schemas || {};
    if (Object.keys(schemas).length) {
      out.appendChild(el("h2", "Schemas"));
      for (const [name, schema] of Object.entries(schemas)) {
        out.appendChild(el("h3", name));
        out.appendChild(json(schema));
      }
    }
    document.body.dataset.rendered = chosen.value;
  }
  select.addEventListener("change", () => {
    history.replaceState(null, "", "?service=" + select.value);
    show();
  });
  show();
})();

// The service menu of the portal's pages: fills a <select> from a [{name, url}] list
// (specs.json, events.json) and picks the service named by ?service= when there is one.
async function hearthMenu(select, listUrl) {
  const specs = await (await fetch(listUrl)).json();
  const wanted = new URLSearchParams(location.search).get("service");
  for (const spec of specs) {
    const option = document.createElement("option");
    option.value = spec.name;
    option.textContent = spec.name;
    option.dataset.url = spec.url;
    select.appendChild(option);
  }
  if (wanted && specs.some((spec) => spec.name === wanted)) select.value = wanted;
  return specs;
}

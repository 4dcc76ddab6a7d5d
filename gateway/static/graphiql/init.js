/*
 * GraphiQL page bootstrap, served from the package so the page can run under
 * `script-src 'self'` (no inline script). Adapted from Strawberry's graphiql.html.
 *
 * - The GraphQL endpoint comes from `data-endpoint` on #graphiql, so this file is static.
 * - The editors are prefilled from the URL fragment, `#query=...&variables=...`, and edits are
 *   written back to it so the URL can be shared. The fragment is never sent to the server: a
 *   GET of the endpoint with `?query=` is a GraphQL request (GraphQL over HTTP), not this page.
 *   `?q=` / `?query=` are still read when the server does serve the page with a search string.
 * - No websocket subscription URL: subscriptions are not offered by this page.
 */
(function () {
  "use strict";

  var DEFAULT_QUERY =
    "# Welcome to GraphiQL\n" +
    "#\n" +
    "# Type queries into this side of the screen; typeaheads and validation\n" +
    "# use the live schema.\n" +
    "#\n" +
    "# Keyboard shortcuts:\n" +
    "#\n" +
    "#       Run Query:  Ctrl-Enter (or press the play button)\n" +
    "#   Auto Complete:  Ctrl-Space (or just start typing)\n" +
    "#\n";

  var container = document.getElementById("graphiql");
  var endpoint = container.getAttribute("data-endpoint") || "/graphql";
  var search = new URLSearchParams(window.location.search);
  var state = new URLSearchParams(window.location.hash.slice(1));

  function initial(key, legacyKey) {
    return state.get(key) || search.get(key) || (legacyKey && search.get(legacyKey)) || undefined;
  }

  function updateURL(key, value) {
    if (value) {
      state.set(key, value);
    } else {
      state.delete(key);
    }
    var fragment = state.toString();
    var url = window.location.pathname + window.location.search + (fragment ? "#" + fragment : "");
    window.history.replaceState(null, "", url);
  }

  var fetcher = GraphiQL.createFetcher({ url: endpoint });
  var explorerPlugin = GraphiQLPluginExplorer.explorerPlugin();

  function App() {
    var queryState = React.useState(initial("query", "q") || DEFAULT_QUERY);
    var variablesState = React.useState(initial("variables"));
    var headersState = React.useState(undefined);

    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorerPlugin],
      query: queryState[0],
      variables: variablesState[0],
      headers: headersState[0],
      onEditQuery: function (value) {
        queryState[1](value);
        updateURL("query", value);
      },
      onEditVariables: function (value) {
        variablesState[1](value);
        updateURL("variables", value);
      },
      onEditHeaders: function (value) {
        headersState[1](value);
      },
      defaultEditorToolsVisibility: true,
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
    });
  }

  ReactDOM.createRoot(container).render(React.createElement(App));
})();

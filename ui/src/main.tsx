import { render } from "preact";
import { Link, useLocation } from "./router";
import { SearchPage } from "./pages/search";
import { TracePage } from "./pages/trace";
import { GraphPage } from "./pages/graph";
import { CouplingPage } from "./pages/coupling";
import "./style.css";

function App() {
  const loc = useLocation();
  const traceMatch = /^\/trace\/([^/]+)$/.exec(loc.path);
  let page;
  let section = "search";
  if (traceMatch) {
    page = <TracePage traceId={decodeURIComponent(traceMatch[1])} focus={loc.query.get("span") ?? undefined} />;
    section = "trace";
  } else if (loc.path === "/graph") {
    page = <GraphPage query={loc.query} />;
    section = "graph";
  } else if (loc.path === "/coupling") {
    page = <CouplingPage query={loc.query} />;
    section = "coupling";
  } else {
    page = <SearchPage query={loc.query} />;
  }
  const nav = (href: string, name: string, label: string) => (
    <Link href={href} class={section === name ? "active" : ""}>
      {label}
    </Link>
  );
  return (
    <>
      <header class="top">
        <span class="brand">Outrider</span>
        <nav>
          {nav("/", "search", "Search")}
          {nav("/graph", "graph", "Service graph")}
          {nav("/coupling", "coupling", "Coupling report")}
        </nav>
      </header>
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);

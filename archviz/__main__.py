from archviz.cli import entry

entry()

from archviz.cli import main

main()

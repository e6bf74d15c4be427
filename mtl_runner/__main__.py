from mtl_runner.cli import main

main()

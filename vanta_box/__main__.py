from vanta_box.cli import main

main()

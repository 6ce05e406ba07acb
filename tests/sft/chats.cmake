# The SFT chat data from Debian's packages (needs wordnet-base, wamerican, fortunes-min and
# miscfiles; skipped when they are not installed). Checks the JSONL with python3's json module.
add_test(NAME sft_make_chats
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/make_chats_test.sh ${PROJECT_SOURCE_DIR})
# It generates the corpus three times and checks 56k conversations: about 2 minutes on an idle
# machine, more on a loaded one.
set_tests_properties(sft_make_chats PROPERTIES LABELS sft SKIP_RETURN_CODE 77 TIMEOUT 900)

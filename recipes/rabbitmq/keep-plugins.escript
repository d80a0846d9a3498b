#!/usr/bin/env escript
%% keep-plugins.escript PLUGINS_DIR ROOT_APP...
%%
%% Prints the directories under PLUGINS_DIR that the ROOT_APPs need: the apps themselves
%% and every app their .app files name, followed to the end. The image build removes the
%% rest: RabbitMQ reads every plugin present at boot (seconds on a small machine).
main([Dir | Roots]) ->
    {ok, Subdirs} = file:list_dir(Dir),
    Apps = maps:from_list(lists:filtermap(fun(Sub) -> describe(Dir, Sub) end, Subdirs)),
    Needed = needed([list_to_atom(Root) || Root <- Roots], Apps, #{}),
    [io:format("~s~n", [Sub]) || {_, {Sub, _}} <- maps:to_list(maps:with(maps:keys(Needed), Apps))].

describe(Dir, Sub) ->
    case filelib:wildcard(filename:join([Dir, Sub, "ebin", "*.app"])) of
        [File] ->
            {ok, [{application, Name, Props}]} = file:consult(File),
            Deps = proplists:get_value(applications, Props, [])
                ++ proplists:get_value(included_applications, Props, []),
            {true, {Name, {Sub, Deps}}};
        _ ->
            false
    end.

needed([], _Apps, Seen) ->
    Seen;
needed([App | Rest], Apps, Seen) ->
    case {maps:is_key(App, Seen), maps:find(App, Apps)} of
        {false, {ok, {_, Deps}}} -> needed(Deps ++ Rest, Apps, Seen#{App => true});
        _ -> needed(Rest, Apps, Seen)
    end.
